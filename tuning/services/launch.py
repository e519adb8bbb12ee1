"""Launching a job: everything that can be checked before queueing is checked here.

A refused launch raises LaunchError with one entry per problem (`field`, `message`), the same
shape the API returns, so a person sees at once why (an empty preference set, an adapter of
another base model, a project without held-out prompts ...) instead of a failed job later.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from prefs.models import PreferencePair, PreferenceSet, Project, Prompt
from tuning.models import Adapter, Evaluation, Job
from tuning.services.jobs import _state_event, job_dispatch_on_commit
from tuning.services.params import ParamError, params_clean

# Kinds that produce a policy adapter and so are followed by an evaluation.
TRAINING_KINDS = (Job.Kind.DPO, Job.Kind.REJECTION_SAMPLING)
# Kinds that need a frozen preference set.
SET_KINDS = (Job.Kind.DPO, Job.Kind.REWARD_MODEL)


class LaunchError(Exception):
    """A launch refused before queueing; `errors` lists [{"field", "message"}]."""

    status = 400

    def __init__(self, errors: list[ParamError]):
        self.errors = [{"field": e.field, "message": e.message} for e in errors]
        super().__init__("; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors))


def _adapter(adapter_id, *, project: Project, field: str, errors: list, kind: str = Adapter.Kind.POLICY):
    if adapter_id is None:
        return None
    adapter = Adapter.objects.select_related("base_model").filter(pk=adapter_id).first()
    if adapter is None:
        errors.append(ParamError(field, f"adapter {adapter_id} does not exist"))
        return None
    if project.base_model_id is not None and adapter.base_model_id != project.base_model_id:
        errors.append(
            ParamError(
                field,
                f"adapter {adapter.name} (#{adapter.pk}) belongs to base model "
                f"{adapter.base_model.name}, not to this project's {project.base_model.name}",
            )
        )
        return None
    if adapter.project_id not in (None, project.pk):
        errors.append(ParamError(field, f"adapter {adapter.name} (#{adapter.pk}) belongs to another project"))
        return None
    if adapter.kind != kind:
        wanted = "a policy adapter" if kind == Adapter.Kind.POLICY else "a reward-model adapter"
        errors.append(ParamError(field, f"adapter {adapter.name} (#{adapter.pk}) is a {adapter.kind} adapter; {wanted} is needed"))
        return None
    return adapter


def _check_base_model(project: Project, errors: list) -> None:
    from tuning.engine.errors import BadInput
    from tuning.engine.sources import resolve_source

    if project.base_model is None:
        errors.append(ParamError("project", f"project {project.name} has no base model; set one first"))
        return
    try:
        resolve_source(project.base_model.source)
    except BadInput as exc:
        errors.append(ParamError("project", f"base model {project.base_model.name}: {exc}"))


def _check_preference_set(set_id, *, project: Project, required: bool, errors: list) -> PreferenceSet | None:
    if set_id is None:
        if required:
            errors.append(ParamError("preference_set", "a frozen preference set is required for this kind of job"))
        return None
    preference_set = PreferenceSet.objects.filter(pk=set_id).first()
    if preference_set is None:
        errors.append(ParamError("preference_set", f"preference set {set_id} does not exist"))
        return None
    if preference_set.project_id != project.pk:
        errors.append(ParamError("preference_set", f"preference set {set_id} belongs to another project"))
        return None
    # Decided pairs and kept ties train; both-bad pairs do not, nor pairs on held-out prompts.
    trainable = PreferencePair.objects.filter(
        preference_set=preference_set,
        kind__in=[PreferencePair.Kind.PREFERRED, PreferencePair.Kind.TIE],
        prompt__split=Prompt.Split.TRAIN,
    ).count()
    if trainable == 0:
        errors.append(
            ParamError(
                "preference_set",
                f"preference set v{preference_set.version} is empty: it holds no preferred pairs on "
                f"train prompts ({preference_set.pair_count} pairs in all); collect judgments and "
                "freeze a new version",
            )
        )
        return None
    return preference_set


def _prompts_for(project: Project, split: str):
    prompts = Prompt.objects.filter(project=project)
    return prompts if split == "all" else prompts.filter(split=split)


def job_launch(
    *,
    kind: str,
    project: Project,
    created_by=None,
    preference_set_id: int | None = None,
    adapter_id: int | None = None,
    params: dict | None = None,
    source_job: Job | None = None,
) -> Job:
    """Validate, then queue a job (dispatched to the broker once the transaction commits)."""
    if kind not in Job.Kind.values:
        raise LaunchError([ParamError("kind", f"must be one of {', '.join(Job.Kind.values)}, not {kind!r}")])
    cleaned, errors = params_clean(kind=kind, raw=params)
    errors = list(errors)
    _check_base_model(project, errors)
    adapter = _adapter(adapter_id, project=project, field="adapter", errors=errors)
    preference_set = _check_preference_set(
        preference_set_id, project=project, required=kind in SET_KINDS, errors=errors
    )
    evaluation_sides = None
    if kind == Job.Kind.REJECTION_SAMPLING:
        _check_rejection(cleaned, project=project, adapter=adapter, adapter_id=adapter_id, errors=errors)
    elif kind == Job.Kind.GENERATE:
        _check_generate(cleaned, project=project, adapter=adapter, errors=errors)
    elif kind == Job.Kind.EVALUATE:
        evaluation_sides = _check_evaluate(cleaned, project=project, adapter=adapter, adapter_id=adapter_id, errors=errors)
    if errors:
        raise LaunchError(errors)

    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            project=project,
            base_model=project.base_model,
            input_adapter=adapter,
            preference_set=preference_set,
            params=cleaned,
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
            source_job=source_job,
            max_attempts=max(1, settings.PREFLOOP_JOB_MAX_ATTEMPTS),
        )
        if evaluation_sides is not None:
            before, after = evaluation_sides
            Evaluation.objects.create(
                project=project,
                job=job,
                source_job=source_job,
                base_model=project.base_model,
                before_adapter=before,
                after_adapter=after,
            )
        _state_event(job.pk, Job.State.QUEUED, 0, kind=kind)
        job_dispatch_on_commit(job.pk)
    return job


def _check_rejection(cleaned: dict, *, project, adapter, adapter_id, errors: list) -> None:
    if cleaned["reward"] == "implicit":
        reward_id = cleaned["reward_adapter"] if cleaned["reward_adapter"] is not None else adapter_id
        if reward_id is None:
            errors.append(
                ParamError(
                    "params.reward_adapter",
                    "nothing scores the answers: pick a DPO adapter or a reward model to score with "
                    "(reward_adapter), or sample from an adapter, whose implicit reward then scores; "
                    "a project without adapters trains one with a DPO job first",
                )
            )
        else:
            _adapter(reward_id, project=project, field="params.reward_adapter", errors=errors)
    else:
        if cleaned["reward_adapter"] is None:
            errors.append(ParamError("params.reward_adapter", "reward 'model' needs a reward-model adapter"))
        else:
            _adapter(
                cleaned["reward_adapter"], project=project, field="params.reward_adapter", errors=errors,
                kind=Adapter.Kind.REWARD,
            )
    if not _prompts_for(project, cleaned["split"]).exists():
        errors.append(ParamError("params.split", f"the project has no {cleaned['split']} prompts to sample for"))


def _check_generate(cleaned: dict, *, project, adapter, errors: list) -> None:
    if cleaned["opponent"] == "same" and cleaned["pairing"] == "reward_gap" and (adapter is None or adapter.parent_id is None):
        errors.append(
            ParamError(
                "params.pairing",
                "pairing by reward gap scores answers by the adapter's implicit reward against its "
                "parent: start from an adapter trained from a parent",
            )
        )
    if cleaned["opponent"] == "adapter":
        if cleaned["adapter_b"] is None:
            errors.append(ParamError("params.adapter_b", "opponent 'adapter' needs the second adapter's id"))
        else:
            _adapter(cleaned["adapter_b"], project=project, field="params.adapter_b", errors=errors)
    if cleaned["prompt_ids"]:
        found = set(Prompt.objects.filter(project=project, pk__in=cleaned["prompt_ids"]).values_list("pk", flat=True))
        missing = [pid for pid in cleaned["prompt_ids"] if pid not in found]
        if missing:
            errors.append(ParamError("params.prompt_ids", f"not prompts of this project: {missing[:10]}"))
    elif not _prompts_for(project, cleaned["split"]).exists():
        errors.append(ParamError("params.split", f"the project has no {cleaned['split']} prompts"))


def _check_evaluate(cleaned: dict, *, project, adapter, adapter_id, errors: list):
    if adapter_id is None:
        errors.append(ParamError("adapter", "the adapter to evaluate (the 'after' side) is required"))
        return None
    if adapter is None:
        return None
    before = None
    if cleaned["before"] == "parent":
        before = adapter.parent
    elif cleaned["before"] == "adapter":
        if cleaned["before_adapter"] is None:
            errors.append(ParamError("params.before_adapter", "before 'adapter' needs the adapter's id"))
        else:
            before = _adapter(cleaned["before_adapter"], project=project, field="params.before_adapter", errors=errors)
            if before is not None and before.pk == adapter.pk:
                errors.append(ParamError("params.before_adapter", "before and after are the same adapter"))
    if not Prompt.objects.filter(project=project, split=Prompt.Split.HELDOUT).exists():
        errors.append(
            ParamError(
                "project",
                "the project has no held-out prompts to evaluate on; import prompts with split 'heldout'",
            )
        )
    return before, adapter


def evaluation_launch(*, source_job: Job, after: Adapter) -> Job:
    """The evaluation that follows a successful training job (same transaction as its success)."""
    params = {
        name: source_job.params[name]
        for name in (
            "eval_max_prompts", "eval_max_new_tokens", "baseline_base", "baseline_system_prompt",
            "drift_threshold", "seed",
        )
        if name in source_job.params
    }
    if source_job.kind == Job.Kind.DPO:
        params["beta"] = source_job.params.get("beta")
    params["before"] = "adapter" if source_job.input_adapter_id else "base"
    params["before_adapter"] = source_job.input_adapter_id
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.EVALUATE,
            project=source_job.project,
            base_model=source_job.base_model,
            input_adapter=after,
            preference_set=source_job.preference_set,
            params=params_clean(kind=Job.Kind.EVALUATE, raw=params)[0],
            created_by=source_job.created_by,
            source_job=source_job,
            max_attempts=max(1, settings.PREFLOOP_JOB_MAX_ATTEMPTS),
        )
        Evaluation.objects.create(
            project=source_job.project,
            job=job,
            source_job=source_job,
            base_model=source_job.base_model,
            before_adapter=source_job.input_adapter,
            after_adapter=after,
        )
        _state_event(job.pk, Job.State.QUEUED, 0, kind=job.kind, after_job=source_job.pk)
        job_dispatch_on_commit(job.pk)
    return job
