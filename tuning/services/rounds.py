"""Rounds: one action turns the project's active adapter into a candidate that reviewers judge.

A round samples K answers from the active adapter for the training prompts that still lack
on-policy data (a generate job), pairs them, and sends the pairs to reviewers as ordinary blind
comparisons. Once its comparisons hold the target number of judgments (the worker's maintenance
loop checks), or an admin says so, it freezes the project's judgments as a new preference set
and trains DPO from the adapter it started from; the training job's evaluation follows as
usual, and promoting its adapter ends the round.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from prefs.models import Comparison, Judgment, PreferencePair, Project, Prompt
from prefs.services.snapshots import FreezeRule, preference_set_freeze
from tuning.models import Job, Pairing, Round, RoundPolicy
from tuning.services.launch import job_launch

# Sampling of a round's answers: the temperature the demo's shipped answers used, and room for
# the default model's usual 100-200-word answers to finish.
ROUND_TEMPERATURE = 0.8
ROUND_MAX_NEW_TOKENS = 192
# Bounds of the round settings (the database holds up to 2**31 - 1; these are far past any use).
MAX_TARGET_JUDGMENTS = 1_000_000
MAX_ROUND_PROMPTS = 100_000


class RoundError(Exception):
    """A round action refused, with the reason a person can act on."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def round_policy_get(project: Project) -> RoundPolicy:
    policy = RoundPolicy.objects.filter(project=project).first()
    return policy if policy is not None else RoundPolicy(project=project)


def round_policy_update(*, project: Project, samples: int, pairing: str, target_judgments: int, max_prompts: int) -> RoundPolicy:
    if not 2 <= samples <= 4:
        raise RoundError(f"answers per prompt must be 2, 3 or 4, not {samples}", status=400)
    if pairing not in Pairing.values:
        raise RoundError(f"pairing must be one of {', '.join(Pairing.values)}, not {pairing!r}", status=400)
    if not 1 <= target_judgments <= MAX_TARGET_JUDGMENTS or not 1 <= max_prompts <= MAX_ROUND_PROMPTS:
        raise RoundError(
            f"the target judgments must lie between 1 and {MAX_TARGET_JUDGMENTS:,}, the prompts per round "
            f"between 1 and {MAX_ROUND_PROMPTS:,}",
            status=400,
        )
    policy, _ = RoundPolicy.objects.update_or_create(
        project=project,
        defaults={"samples": samples, "pairing": pairing, "target_judgments": target_judgments, "max_prompts": max_prompts},
    )
    return policy


def prompts_needing_data(project: Project):
    """Training prompts with no sampled comparison from the project's active adapter yet."""
    adapter_id = project.active_adapter_id
    sampled = Comparison.objects.filter(project=project, origin=Comparison.Origin.SAMPLING)
    if adapter_id is None:
        sampled = sampled.filter(candidate_a__adapter__isnull=True, candidate_b__adapter__isnull=True)
    else:
        sampled = sampled.filter(candidate_a__adapter_id=adapter_id, candidate_b__adapter_id=adapter_id)
    return (
        Prompt.objects.filter(project=project, split=Prompt.Split.TRAIN)
        .exclude(pk__in=sampled.values("prompt_id"))
        .order_by("id")
    )


def round_open(project: Project) -> Round | None:
    """The project's round that has not trained yet, if any."""
    return Round.objects.filter(project=project, train_job__isnull=True).exclude(
        generate_job__state__in=(Job.State.FAILED, Job.State.CANCELLED)
    ).order_by("-number").first()


def round_busy(project: Project) -> tuple[int, str] | None:
    """(number, state) of the project's latest round while it trains or evaluates."""
    from tuning.models import Evaluation
    from tuning.selectors import round_state

    latest = Round.objects.filter(project=project).select_related("generate_job", "train_job").order_by("-number").first()
    if latest is None or latest.train_job is None:
        return None
    evaluation = Evaluation.objects.filter(source_job=latest.train_job).select_related("job").order_by("-id").first()
    state = round_state(latest, evaluation)
    return (latest.number, state) if state in ("training", "evaluating") else None


def round_start(*, project: Project, by=None, train_params: dict | None = None) -> Round:
    """Start the project's next round from its active adapter.

    ``train_params`` overrides the DPO defaults when the round trains at once (no prompt needed
    sampling); a round that samples first trains later with the defaults.
    """
    if project.base_model_id is None:
        raise RoundError(f"project {project.name} has no base model; set one first", status=400)
    with transaction.atomic():
        # Rounds of one project are numbered, and started, one at a time.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        project.refresh_from_db(fields=["active_adapter"])
        current = round_open(project)
        if current is not None:
            raise RoundError(
                f"round {current.number} has not trained yet: train it (or let it reach its "
                f"target of {current.target_judgments} judgments) before starting another"
            )
        busy = round_busy(project)
        if busy is not None:
            raise RoundError(f"round {busy[0]} is still {busy[1]}; start the next one when it has finished")
        policy = round_policy_get(project)
        if policy.pairing == Pairing.REWARD_GAP and (project.active_adapter is None or project.active_adapter.parent_id is None):
            raise RoundError(
                "pairing by reward gap needs an active adapter trained from a parent (its implicit "
                "reward scores the answers); use all pairs for the first round",
                status=400,
            )
        last = Round.objects.filter(project=project).order_by("-number").values_list("number", flat=True).first()
        prompt_ids = list(prompts_needing_data(project).values_list("id", flat=True)[: policy.max_prompts])
        generate_job = None
        if prompt_ids:
            generate_job = job_launch(
                kind=Job.Kind.GENERATE,
                project=project,
                created_by=by,
                adapter_id=project.active_adapter_id,
                params={
                    "opponent": "same",
                    "samples": policy.samples,
                    "pairing": policy.pairing,
                    "prompt_ids": prompt_ids,
                    "max_prompts": len(prompt_ids),
                    "temperature": ROUND_TEMPERATURE,
                    "max_new_tokens": ROUND_MAX_NEW_TOKENS,
                    "seed": (last or 0) + 1,
                },
            )
        round_ = Round.objects.create(
            project=project,
            number=(last or 0) + 1,
            parent_adapter=project.active_adapter,
            samples=policy.samples,
            pairing=policy.pairing,
            target_judgments=policy.target_judgments,
            generate_job=generate_job,
            started_by=by if getattr(by, "is_authenticated", False) else None,
        )
        if generate_job is None:
            # Every training prompt already has on-policy data (the demo ships it): the round
            # goes straight to training, and a refusal to train takes the round back with it.
            round_train(round_=round_, by=by, params=train_params)
            round_.refresh_from_db()
    return round_


def round_comparisons(round_: Round):
    """The comparisons the round's own sampling made."""
    if round_.generate_job_id is None:
        return Comparison.objects.none()
    return Comparison.objects.filter(
        project_id=round_.project_id,
        origin=Comparison.Origin.SAMPLING,
        candidate_a__sampling__job=round_.generate_job_id,
    )


def round_judgments(round_: Round) -> int:
    """Judgments so far on the round's comparisons: people's and imported labels."""
    return Judgment.objects.filter(comparison__in=round_comparisons(round_)).filter(
        Q(reviewer__isnull=False) | Q(imported=True)
    ).count()


def round_ready(round_: Round) -> bool:
    """Sampling is over and the round's comparisons hold their target of judgments."""
    if round_.train_job_id is not None:
        return False
    job = round_.generate_job
    if job is None:
        return True
    if job.state != Job.State.SUCCEEDED:
        return False
    return round_judgments(round_) >= round_.target_judgments


def round_train(*, round_: Round, by=None, force: bool = False, params: dict | None = None) -> Job:
    """Freeze the project's judgments and train from the round's starting adapter.

    ``force`` is an admin's "train now": it skips the target, not the checks that the sampling
    finished and that the set has pairs to learn from.
    """
    with transaction.atomic():
        # No select_related here: PostgreSQL cannot lock the nullable side of an outer join.
        round_ = Round.objects.select_for_update().get(pk=round_.pk)
        if round_.train_job_id is not None:
            raise RoundError(f"round {round_.number} is already training (job {round_.train_job_id})")
        job = round_.generate_job
        if job is not None and job.state in Job.ACTIVE_STATES:
            raise RoundError(f"round {round_.number} is still sampling answers (job {job.pk}); wait for it to finish")
        if job is not None and job.state != Job.State.SUCCEEDED:
            raise RoundError(f"round {round_.number}'s sampling job {job.pk} {job.state}; start a new round")
        if not force and not round_ready(round_):
            have = round_judgments(round_)
            raise RoundError(
                f"round {round_.number} has {have} of its {round_.target_judgments} judgments; "
                "wait for reviewers, or train now"
            )
        preference_set = preference_set_freeze(project=round_.project, rule=FreezeRule(), created_by=by)
        if not PreferencePair.objects.filter(preference_set=preference_set).exists():
            raise RoundError(
                "the frozen set has no pairs to learn from: the judgments so far are all ties, "
                "both bad, or on held-out prompts",
                status=400,
            )
        train_job = job_launch(
            kind=Job.Kind.DPO,
            project=round_.project,
            created_by=by,
            preference_set_id=preference_set.pk,
            adapter_id=round_.parent_adapter_id,
            params=params or {},
        )
        round_.preference_set = preference_set
        round_.train_job = train_job
        round_.frozen_at = timezone.now()
        round_.save(update_fields=["preference_set", "train_job", "frozen_at"])
    return train_job


def rounds_train_ready() -> list[int]:
    """Train every round whose comparisons reached their target (the worker's maintenance loop)."""
    started = []
    waiting = Round.objects.filter(train_job__isnull=True, generate_job__state=Job.State.SUCCEEDED)
    for round_ in waiting.select_related("generate_job"):
        if round_ready(round_):
            try:
                round_train(round_=round_)
            except RoundError:
                continue
            started.append(round_.pk)
    return started
