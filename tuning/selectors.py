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


# -- rounds ------------------------------------------------------------------------------------

def round_state(round_, evaluation: Evaluation | None) -> str:
    """Where a round stands, read from its jobs (nothing stores it)."""
    generate = round_.generate_job
    if round_.train_job is None:
        if generate is not None and generate.state in Job.ACTIVE_STATES:
            return "sampling"
        if generate is not None and generate.state != Job.State.SUCCEEDED:
            return "failed"
        return "collecting"
    train = round_.train_job
    if train.state in Job.ACTIVE_STATES:
        return "training"
    if train.state != Job.State.SUCCEEDED:
        return "failed"
    if evaluation is None:
        return "done"
    if evaluation.job.state in Job.ACTIVE_STATES:
        return "evaluating"
    if evaluation.job.state != Job.State.SUCCEEDED:
        return "failed"
    return "judging"


def rounds_timeline(project: Project) -> list[dict]:
    """The project's rounds, newest first: data, steps, win rate with its interval, drift, promotion."""
    from tuning.models import AdapterPromotion, Round
    from tuning.services.evaluations import evaluation_summary
    from tuning.services.rounds import round_comparisons, round_judgments

    rounds = list(
        Round.objects.filter(project=project)
        .select_related("parent_adapter", "generate_job", "train_job", "preference_set")
        .order_by("-number")
    )
    train_ids = [r.train_job_id for r in rounds if r.train_job_id]
    evaluations = {
        e.source_job_id: e
        for e in Evaluation.objects.filter(source_job_id__in=train_ids).select_related("job", "after_adapter").order_by("id")
    }
    promoted = set(
        AdapterPromotion.objects.filter(project=project, is_rollback=False, adapter__isnull=False).values_list("adapter_id", flat=True)
    )
    rows = []
    for round_ in rounds:
        evaluation = evaluations.get(round_.train_job_id)
        state = round_state(round_, evaluation)
        train_result = (round_.train_job.result or {}) if round_.train_job else {}
        output = evaluation.after_adapter if evaluation else None
        row = {
            "round": round_,
            "state": state,
            "comparisons": round_comparisons(round_).count(),
            "judgments": round_judgments(round_),
            "pairs": round_.preference_set.pair_count if round_.preference_set else None,
            "steps": train_result.get("steps"),
            "warning": train_result.get("warning"),
            "evaluation": evaluation,
            "adapter": output,
            "win": None,
            "drift": None,
            "promoted": output is not None and output.pk in promoted,
            "active": output is not None and output.pk == project.active_adapter_id,
        }
        if evaluation is not None:
            summary = evaluation_summary(evaluation)
            row["win"] = next((arm for arm in summary["arms"] if arm["arm"] == "before"), None)
            row["drift"] = (evaluation.metrics.get("drift") or {}).get("mean_kl")
        rows.append(row)
    return rows
