"""The job API: launch, list, read, follow events, cancel. Thin doors onto tuning.services."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from prefs.api.permissions import IsAdmin
from prefs.models import Project
from prefs.params import is_id
from tuning.api.serializers import JobEventsSerializer, JobSerializer, LaunchSerializer
from tuning.models import Job
from tuning.selectors import job_events_since, jobs_list
from tuning.services.jobs import JobError, job_cancel, job_reap_stale
from tuning.services.launch import LaunchError, job_launch

# Most jobs a list returns (newest first).
LIST_LIMIT = 200


class JobProblem(APIException):
    def __init__(self, exc: JobError):
        self.status_code = exc.status
        super().__init__(detail=str(exc))


class JobListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            OpenApiParameter("project", int, description="Only this project's jobs."),
            OpenApiParameter("state", str, enum=Job.State.values),
            OpenApiParameter("kind", str, enum=Job.Kind.values),
        ],
        responses={200: JobSerializer(many=True)},
    )
    def get(self, request):
        # Reading the list is also when a dead worker's job gets noticed, worker or not.
        job_reap_stale()
        project = request.query_params.get("project")
        if project is not None and not is_id(project):
            raise ValidationError({"project": ["must be a project id"]})
        jobs = jobs_list(
            project_id=int(project) if project else None,
            state=request.query_params.get("state"),
            kind=request.query_params.get("kind"),
        )[:LIST_LIMIT]
        return Response(JobSerializer(jobs, many=True).data)

    @extend_schema(operation_id="jobs_launch", request=LaunchSerializer, responses={201: JobSerializer})
    def post(self, request):
        incoming = LaunchSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        project = Project.objects.filter(pk=data["project"]).first()
        if project is None:
            raise ValidationError({"project": [f"project {data['project']} does not exist"]})
        try:
            job = job_launch(
                kind=data["kind"],
                project=project,
                created_by=request.user,
                preference_set_id=data["preference_set"],
                adapter_id=data["adapter"],
                params=data["params"],
            )
        except LaunchError as exc:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            return Response(
                {"detail": f"Invalid input: {summary}", "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="jobs_retrieve", responses={200: JobSerializer})
    def get(self, request, job_id: int):
        job_reap_stale()
        return Response(JobSerializer(get_object_or_404(Job, pk=job_id)).data)


class JobEventsView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="jobs_events",
        parameters=[
            OpenApiParameter("after", int, description="Only events with a larger id (the last answer's `last`)."),
            OpenApiParameter("kind", str, enum=["metrics", "log", "state"]),
        ],
        responses={200: JobEventsSerializer},
    )
    def get(self, request, job_id: int):
        job = get_object_or_404(Job, pk=job_id)
        after = request.query_params.get("after", "0")
        if not is_id(after):
            raise ValidationError({"after": ["must be an event id"]})
        events = job_events_since(job, after=int(after), kind=request.query_params.get("kind"))
        body = {
            "events": events,
            "last": events[-1].pk if events else (int(after) or None),
            "state": job.state,
        }
        return Response(JobEventsSerializer(body).data)


class JobCancelView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="jobs_cancel",
        request=None,
        responses={200: JobSerializer, 409: OpenApiResponse(description="The job has already finished.")},
    )
    def post(self, request, job_id: int):
        job = get_object_or_404(Job, pk=job_id)
        try:
            job = job_cancel(job=job, by=request.user)
        except JobError as exc:
            raise JobProblem(exc) from exc
        return Response(JobSerializer(job).data)
