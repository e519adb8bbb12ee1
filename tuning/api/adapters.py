"""The adapter registry API: list, detail with lineage, promote, roll back."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.api.permissions import IsAdmin
from prefs.models import Project
from prefs.params import is_id
from tuning.api.serializers import (
    AdapterDetailSerializer,
    AdapterSerializer,
    PromoteSerializer,
    PromotionSerializer,
)
from tuning.models import Adapter
from tuning.selectors import active_adapter_map, adapters_list
from tuning.services.adapters import (
    AdapterError,
    adapter_ancestors,
    adapter_promote,
    adapter_rollback,
)


class AdapterProblem(APIException):
    def __init__(self, exc: AdapterError):
        self.status_code = exc.status
        super().__init__(detail=str(exc))


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not is_id(raw):
        raise ValidationError({name: ["must be an id"]})
    return int(raw)


def _promotion_body(promotion) -> dict:
    return {
        "project": promotion.project_id,
        "active_adapter": promotion.adapter_id,
        "previous": promotion.previous_id,
        "is_rollback": promotion.is_rollback,
    }


class AdapterListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="adapters_list",
        parameters=[OpenApiParameter("project", int), OpenApiParameter("base_model", int)],
        responses={200: AdapterSerializer(many=True)},
    )
    def get(self, request):
        adapters = adapters_list(
            project_id=_int_param(request, "project"), base_model_id=_int_param(request, "base_model")
        )
        context = {"active": active_adapter_map()}
        return Response(AdapterSerializer(adapters, many=True, context=context).data)


class AdapterDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="adapters_retrieve", responses={200: AdapterDetailSerializer})
    def get(self, request, adapter_id: int):
        adapter = get_object_or_404(Adapter, pk=adapter_id)
        adapter.ancestors = adapter_ancestors(adapter)
        adapter.child_list = list(adapter.children.order_by("id"))
        context = {"active": active_adapter_map()}
        return Response(AdapterDetailSerializer(adapter, context=context).data)


class AdapterPromoteView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="adapters_promote", request=PromoteSerializer, responses={200: PromotionSerializer})
    def post(self, request, adapter_id: int):
        adapter = get_object_or_404(Adapter, pk=adapter_id)
        incoming = PromoteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        project_id = incoming.validated_data["project"] or adapter.project_id
        if project_id is None:
            raise ValidationError({"project": ["this adapter belongs to no project; name one"]})
        project = get_object_or_404(Project, pk=project_id)
        try:
            promotion = adapter_promote(project=project, adapter=adapter, by=request.user)
        except AdapterError as exc:
            raise AdapterProblem(exc) from exc
        return Response(_promotion_body(promotion))


class ProjectRollbackView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="projects_rollback", request=None, responses={200: PromotionSerializer})
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        try:
            promotion = adapter_rollback(project=project, by=request.user)
        except AdapterError as exc:
            raise AdapterProblem(exc) from exc
        return Response(_promotion_body(promotion))
