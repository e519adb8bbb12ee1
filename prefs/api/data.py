"""Data in and out: import files, freeze preference sets, export them. Admins only.

`?format=` names a data format on these endpoints, not one of DRF's renderers, so they opt out
of DRF's format-based content negotiation (which would answer 404 for `?format=trl`).
"""

from __future__ import annotations

import tempfile

from django.conf import settings
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.access import get_project_for_admin
from prefs.api.pagination import NewestFirst
from prefs.api.permissions import IsAdmin
from prefs.formats.jsonl import IMPORT_FORMATS
from prefs.models import PreferenceSet
from prefs.params import is_id
from prefs.services.exports import EXPORT_FORMATS, export_headers, preference_set_export
from prefs.services.imports import ImportRejected, ImportTooLarge, import_run
from prefs.services.snapshots import FreezeRule, PreferenceSetError, preference_set_freeze

# Bytes read from a raw request body at a time while spooling it; bodies up to 8 MiB stay in
# memory, larger ones go to a temporary file.
_READ_BYTES = 1024 * 1024
_SPOOL_BYTES = 8 * 1024 * 1024
# A multipart body is its file plus boundaries and headers.
_MULTIPART_SLACK_BYTES = 64 * 1024


class FormatIsData(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class JsonLinesParser(BaseParser):
    """Documents the raw-body upload; the view reads the stream itself, unparsed."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


def _bad_request(errors: list[dict], detail: str | None = None) -> Response:
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Response({"detail": detail or f"Invalid input: {summary}", "errors": errors},
                    status=status.HTTP_400_BAD_REQUEST)


def _too_large(limit: int) -> Response:
    return Response({"detail": str(ImportTooLarge(limit))}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A JSONL file, optionally gzipped.")


class ImportResultSerializer(serializers.Serializer):
    created = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="Rows written: prompts, candidates, comparisons, judgments.")
    duplicates = serializers.IntegerField(help_text="Rows skipped as already present.")
    format = serializers.CharField()
    rows = serializers.IntegerField()


class _LineError(serializers.Serializer):
    line = serializers.IntegerField(
        allow_null=True, required=False,
        help_text="Absent when the problem is the request itself (no file, unknown format).",
    )
    field = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportRejectedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = _LineError(many=True, help_text="The first 100 problems, in line order.")
    # Both absent when the request itself is refused before the file is read.
    error_count = serializers.IntegerField(help_text="All problems found.", required=False)
    format = serializers.CharField(required=False)


class ImportView(APIView):
    permission_classes = [IsAdmin]
    parser_classes = [MultiPartParser, JsonLinesParser]
    content_negotiation_class = FormatIsData

    @extend_schema(
        operation_id="projects_import",
        parameters=[
            OpenApiParameter("format", str, enum=list(IMPORT_FORMATS), default="auto"),
            OpenApiParameter("queue_labelled", bool, default=False,
                             description="Also queue rows that carry a preference for human review."),
        ],
        request={
            "application/jsonl": OpenApiTypes.BINARY,
            "multipart/form-data": UploadSerializer,
        },
        responses={
            201: ImportResultSerializer,
            400: ImportRejectedSerializer,
            413: OpenApiResponse(description="The file is over PREFLOOP_IMPORT_MAX_BYTES."),
        },
    )
    def post(self, request, project_id: int):
        project = get_project_for_admin(request.user, project_id)
        fmt = request.query_params.get("format", "auto")
        if fmt not in IMPORT_FORMATS:
            return _bad_request([{"field": "format", "message": f"must be one of {', '.join(IMPORT_FORMATS)}"}])
        limit = settings.PREFLOOP_IMPORT_MAX_BYTES
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > limit + _MULTIPART_SLACK_BYTES:
            return _too_large(limit)
        if request.content_type.startswith("multipart/form-data"):
            upload = request.FILES.get("file")
            if upload is None:
                return _bad_request([{"field": "file", "message": "is missing"}])
            if upload.size > limit:
                return _too_large(limit)
            stream = upload
        else:
            stream = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
            body = request.stream
            size = 0
            while body is not None and (chunk := body.read(_READ_BYTES)):
                size += len(chunk)
                if size > limit:
                    stream.close()
                    return _too_large(limit)
                stream.write(chunk)
        try:
            result = import_run(
                project=project,
                stream=stream,
                fmt=fmt,
                queue_labelled=request.query_params.get("queue_labelled") in ("1", "true", "True"),
            )
        except ImportTooLarge:
            return _too_large(limit)
        except ImportRejected as exc:
            return Response(
                {"detail": str(exc), "errors": exc.errors, "error_count": exc.error_count, "format": exc.format},
                status=status.HTTP_400_BAD_REQUEST,
            )
        finally:
            stream.close()
        body = {"created": result.created, "duplicates": result.duplicates, "format": result.format,
                "rows": result.rows}
        return Response(body, status=status.HTTP_201_CREATED)


class RuleSerializer(serializers.Serializer):
    """The freeze rule; see prefs.services.snapshots.FreezeRule for what each option does."""

    rule = serializers.ChoiceField(choices=["majority"], default="majority")
    min_judgments = serializers.IntegerField(min_value=1, default=1)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    include_ties = serializers.BooleanField(default=False)
    include_both_bad = serializers.BooleanField(default=False)
    include_imported = serializers.BooleanField(default=True)
    strength_as_weight = serializers.BooleanField(default=True)
    exclude_flagged = serializers.BooleanField(default=False)
    split = serializers.ChoiceField(choices=["train", "heldout", "all"], default="train")


class PreferenceSetSerializer(serializers.ModelSerializer):
    pairs = serializers.IntegerField(source="pair_count")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    exports = serializers.SerializerMethodField()

    class Meta:
        model = PreferenceSet
        fields = [
            "id", "project", "version", "pairs", "sha256", "rule", "counts", "diff", "previous",
            "last_judgment_id", "created_by", "created_at", "exports",
        ]

    def get_exports(self, obj) -> dict[str, str]:
        url = reverse("api-preference-set-export", args=[obj.pk])
        return {fmt: f"{url}?format={fmt}" for fmt in EXPORT_FORMATS}


class PreferenceSetListView(APIView):
    permission_classes = [IsAdmin]
    pagination_class = NewestFirst

    @extend_schema(
        operation_id="preference_sets_list",
        parameters=[
            OpenApiParameter("version", int, description="Only this version."),
            OpenApiParameter("sha256", str, description="Only versions with this content hash."),
        ],
        responses={200: PreferenceSetSerializer(many=True)},
    )
    def get(self, request, project_id: int):
        project = get_project_for_admin(request.user, project_id)
        sets = PreferenceSet.objects.filter(project=project).select_related("created_by")
        version = request.query_params.get("version")
        if version is not None:
            if not is_id(version):
                return _bad_request([{"field": "version", "message": "must be a whole number"}])
            sets = sets.filter(version=int(version))
        if sha := request.query_params.get("sha256"):
            sets = sets.filter(sha256=sha.lower())
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(sets, request, view=self)
        return paginator.get_paginated_response(PreferenceSetSerializer(page, many=True).data)

    @extend_schema(operation_id="preference_sets_freeze", request=RuleSerializer,
                   responses={201: PreferenceSetSerializer})
    def post(self, request, project_id: int):
        project = get_project_for_admin(request.user, project_id)
        try:
            rule = FreezeRule.from_data(request.data if isinstance(request.data, dict) else None)
            frozen = preference_set_freeze(project=project, rule=rule, created_by=request.user)
        except PreferenceSetError as exc:
            return _bad_request(exc.errors)
        return Response(PreferenceSetSerializer(frozen).data, status=status.HTTP_201_CREATED)


class PreferenceSetDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="preference_sets_read", responses={200: PreferenceSetSerializer})
    def get(self, request, set_id: int):
        frozen = get_object_or_404(PreferenceSet.objects.select_related("created_by"), pk=set_id)
        return Response(PreferenceSetSerializer(frozen).data)


class PreferenceSetExportView(APIView):
    permission_classes = [IsAdmin]
    content_negotiation_class = FormatIsData

    @extend_schema(
        operation_id="preference_sets_export",
        parameters=[OpenApiParameter("format", str, enum=list(EXPORT_FORMATS), required=True)],
        responses={
            (200, "application/jsonl"): OpenApiTypes.BINARY,
            (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
        },
        description="Streams the version's pairs. Headers X-Prefloop-Sha256, X-Prefloop-Version "
        "and X-Prefloop-Rule name the version; parquet also carries them in its schema metadata.",
    )
    def get(self, request, set_id: int):
        frozen = get_object_or_404(PreferenceSet, pk=set_id)
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORT_FORMATS:
            return _bad_request([{"field": "format", "message": f"must be one of {', '.join(EXPORT_FORMATS)}"}])
        response = StreamingHttpResponse(preference_set_export(frozen, fmt=fmt))
        for name, value in export_headers(frozen, fmt).items():
            response[name] = value
        return response
