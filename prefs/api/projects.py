"""Projects: admins list and create them; reviewers list and read only their own."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.access import get_project_for_user, is_admin, projects_for
from prefs.api.pagination import NewestFirst
from prefs.models import Project
from prefs.services.projects import project_create


class ProjectSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=200)
    overlap = serializers.IntegerField(
        min_value=1, max_value=50, default=1,
        help_text="Judgments (from different reviewers) each comparison needs.",
    )
    hold_timeout_s = serializers.IntegerField(min_value=30, max_value=86_400, default=900)
    gold_rate = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)

    class Meta:
        model = Project
        fields = ["id", "name", "guidelines", "overlap", "hold_timeout_s", "gold_rate", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be blank")
        return value


class ProjectListView(APIView):
    pagination_class = NewestFirst

    @extend_schema(
        operation_id="projects_list",
        parameters=[
            OpenApiParameter("name", str, description="Only projects whose name contains this."),
        ],
        responses={200: ProjectSerializer(many=True)},
    )
    def get(self, request):
        projects = projects_for(request.user)
        if name := request.query_params.get("name"):
            projects = projects.filter(name__icontains=name)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(projects, request, view=self)
        return paginator.get_paginated_response(ProjectSerializer(page, many=True).data)

    @extend_schema(operation_id="projects_create", request=ProjectSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may create projects.")
        incoming = ProjectSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        project = project_create(**incoming.validated_data)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(operation_id="projects_read", responses={200: ProjectSerializer})
    def get(self, request, project_id: int):
        return Response(ProjectSerializer(get_project_for_user(request.user, project_id)).data)
