"""Reads of the tuning app that more than one door needs (pages and API)."""

from __future__ import annotations

from django.db.models import QuerySet

from prefs.models import Project
from tuning.models import Adapter, Evaluation, Job, JobEvent

# Most events one read returns; the client asks again with ?after= for the rest.
EVENTS_PAGE = 2000


def job_evaluation_id(job: Job) -> int | None:
    """The evaluation a job runs (evaluate) or started (a training job that succeeded)."""
    if job.kind == Job.Kind.EVALUATE:
        return Evaluation.objects.filter(job=job).values_list("id", flat=True).first()
    return Evaluation.objects.filter(source_job=job).order_by("-id").values_list("id", flat=True).first()


def jobs_list(*, project_id: int | None = None, state: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.select_related("project", "base_model", "input_adapter", "output_adapter", "preference_set")
    if project_id is not None:
        jobs = jobs.filter(project_id=project_id)
    if state:
        jobs = jobs.filter(state=state)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs.order_by("-id")


def job_events_since(job: Job, *, after: int = 0, kind: str | None = None, limit: int = EVENTS_PAGE) -> list[JobEvent]:
    events = JobEvent.objects.filter(job=job, id__gt=after)
    if kind:
        events = events.filter(kind=kind)
    return list(events.order_by("id")[:limit])


def job_chart_series(job: Job) -> dict[str, list[tuple[int, float]]]:
    """Training curves: per metric, (step, value) with each step's latest value.

    A resumed run repeats the steps after its checkpoint; the later attempt's value wins.
    """
    # DPO's names first; a reward model's trainer logs plain "margin" and "accuracy".
    wanted = {
        "loss": "loss",
        "rewards/margins": "margin",
        "margin": "margin",
        "rewards/accuracies": "accuracy",
        "accuracy": "accuracy",
    }
    series: dict[str, dict[int, float]] = {name: {} for name in set(wanted.values())}
    rows = JobEvent.objects.filter(job=job, kind=JobEvent.Kind.METRICS, data__phase="train").order_by("id")
    for data in rows.values_list("data", flat=True):
        step = data.get("step")
        if not isinstance(step, int):
            continue
        for key, name in wanted.items():
            value = data.get(key)
            if isinstance(value, int | float):
                series[name][step] = float(value)
    return {name: sorted(points.items()) for name, points in series.items()}


def active_adapter_map() -> dict[int, list[int]]:
    """adapter id -> ids of the projects it is active in."""
    out: dict[int, list[int]] = {}
    for project_id, adapter_id in Project.objects.filter(active_adapter__isnull=False).values_list("id", "active_adapter_id"):
        out.setdefault(adapter_id, []).append(project_id)
    return out


def adapters_list(*, project_id: int | None = None, base_model_id: int | None = None) -> QuerySet[Adapter]:
    adapters = Adapter.objects.select_related("base_model", "project", "parent", "job", "preference_set")
    if project_id is not None:
        adapters = adapters.filter(project_id=project_id)
    if base_model_id is not None:
        adapters = adapters.filter(base_model_id=base_model_id)
    return adapters.order_by("id")
