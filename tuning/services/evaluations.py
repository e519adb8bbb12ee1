"""Evaluations: the loop's last step, from an adapter's answers to a verdict with an interval.

The evaluate job answers the project's held-out prompts with the new adapter ("after") and with
what it came from ("before"), plus optional baselines (the bare base model; the input adapter
with a system prompt an admin wrote). Each (prompt, opponent) becomes an ordinary comparison in
the review queue; reviewers never learn which side is which (sides are drawn per assignment).
Automatic figures come with it: preference accuracy on pairs the adapter never trained on,
reward margins, and the drift from the parent on everyday prompts.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q

from prefs.models import Choice, Comparison, Judgment, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create
from prefs.stats.winrate import win_rate
from tuning.models import Evaluation, EvaluationPair, Job
from tuning.services.adapters import adapter_local_dir
from tuning.services.data import preference_rows
from tuning.services.progress import JobReporter
from tuning.services.runner import Outcome, owned_atomic
from tuning.services.sampling import model_label

# How much of the job's progress bar each stage takes.
STAGES = {"answers": (0.0, 0.6), "baselines": (0.6, 0.75), "accuracy": (0.75, 0.85), "drift": (0.85, 1.0)}
# Before, after and baselines are sampled alike (the engine's before/after defaults), seeded.
TEMPERATURE = 0.7
TOP_P = 0.95


def _store_pairs(evaluation: Evaluation, arm: str, prompts, after_texts, other_texts, *, job: Job, other_label: str, other_adapter_id, sampling: dict) -> dict:
    """Comparisons for one arm; identical answers are not sent (nothing to choose)."""
    after = evaluation.after_adapter
    made = identical = 0
    with owned_atomic(job):
        existing = set(EvaluationPair.objects.filter(evaluation=evaluation, arm=arm).values_list("prompt_id", flat=True))
        for prompt, after_text, other_text in zip(prompts, after_texts, other_texts, strict=True):
            if prompt.pk in existing:
                continue
            if after_text.strip() == other_text.strip():
                identical += 1
                continue
            comparison = comparison_create(
                project=evaluation.project,
                prompt=prompt,
                a=CandidateSpec(after_text, source=after.name, adapter_id=after.pk, sampling={**sampling, "evaluation": evaluation.pk}),
                b=CandidateSpec(other_text, source=other_label, adapter_id=other_adapter_id, sampling={**sampling, "evaluation": evaluation.pk}),
                origin=Comparison.Origin.EVALUATION,
            )
            EvaluationPair.objects.create(
                evaluation=evaluation,
                prompt=prompt,
                arm=arm,
                comparison=comparison,
                after_candidate=comparison.candidate_a,
                other_candidate=comparison.candidate_b,
            )
            made += 1
    return {"comparisons": made, "identical": identical}


def _texts(rows: list, key: str | None = None) -> list[str]:
    out = []
    for row in rows:
        value = row[key] if key is not None else row
        if isinstance(value, list):
            value = value[0]
        if isinstance(value, dict):
            value = value.get("text", "")
        out.append(str(value))
    return out


def run_evaluation(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    from tuning.engine.evaluation import before_after, drift_kl, preference_accuracy
    from tuning.engine.generation import generate

    evaluation = Evaluation.objects.select_related("after_adapter", "before_adapter", "project").get(job=job)
    params = job.params
    source = job.base_model.source
    cache = settings.PREFLOOP_MODEL_CACHE
    before, after = evaluation.before_adapter, evaluation.after_adapter
    before_dir, after_dir = adapter_local_dir(before), adapter_local_dir(after)
    base_name = job.base_model.name
    prompts = list(
        Prompt.objects.filter(project=job.project, split=Prompt.Split.HELDOUT).order_by("id")[: params["eval_max_prompts"]]
    )
    sampling = {
        "max_new_tokens": params["eval_max_new_tokens"],
        "seed": params["seed"],
        "temperature": TEMPERATURE,
        "top_p": TOP_P,
    }
    metrics: dict = {"prompts": len(prompts), "arms": {}}

    if prompts:
        reporter.log(f"answering {len(prompts)} held-out prompts before and after")
        answers = before_after(
            source=source,
            before_adapter=before_dir,
            after_adapter=after_dir,
            prompts=[p.messages for p in prompts],
            seed=params["seed"],
            max_new_tokens=params["eval_max_new_tokens"],
            temperature=TEMPERATURE,
            top_p=TOP_P,
            cache_dir=cache,
            progress=reporter.callback_for(
                *STAGES["answers"], {"generate-before": (0.0, 0.5), "generate-after": (0.5, 1.0)}
            ),
        )
        after_texts = _texts(answers, "after")
        metrics["arms"]["before"] = _store_pairs(
            evaluation, EvaluationPair.Arm.BEFORE, prompts, after_texts, _texts(answers, "before"),
            job=job, other_label=model_label(before, base_name),
            other_adapter_id=before.pk if before else None, sampling=sampling,
        )
        baselines = []
        if params["baseline_base"] and before is not None:
            baselines.append((EvaluationPair.Arm.BASE, None, None, f"base:{base_name}"))
        if params["baseline_system_prompt"]:
            baselines.append(
                (EvaluationPair.Arm.SYSTEM_PROMPT, before_dir, params["baseline_system_prompt"],
                 f"{model_label(before, base_name)}+system-prompt")
            )
        start, end = STAGES["baselines"]
        for index, (arm, adapter_dir, system_prompt, label) in enumerate(baselines):
            width = (end - start) / len(baselines)
            reporter.log(f"baseline: {EvaluationPair.Arm(arm).label}")
            outputs = generate(
                source=source,
                adapter=adapter_dir,
                prompts=[p.messages for p in prompts],
                n=1,
                temperature=TEMPERATURE,
                top_p=TOP_P,
                max_new_tokens=params["eval_max_new_tokens"],
                seed=params["seed"],
                system_prompt=system_prompt,
                cache_dir=cache,
                progress=reporter.callback_for(start + index * width, start + (index + 1) * width),
            )
            other_adapter_id = before.pk if (arm == EvaluationPair.Arm.SYSTEM_PROMPT and before) else None
            metrics["arms"][arm] = _store_pairs(
                evaluation, arm, prompts, after_texts, _texts(outputs), job=job,
                other_label=label, other_adapter_id=other_adapter_id,
                sampling={**sampling, "system_prompt": system_prompt} if system_prompt else sampling,
            )
    else:
        reporter.log("the project has no held-out prompts: no comparisons, automatic metrics only")

    beta = params.get("beta") or (after.metadata.get("hyperparameters") or {}).get("beta") or 0.1
    metrics["beta"] = beta
    heldout_rows = preference_rows(job.preference_set, split=Prompt.Split.HELDOUT) if job.preference_set_id else []
    if heldout_rows:
        reporter.log(f"preference accuracy on {len(heldout_rows)} pairs of held-out prompts")
        accuracy = preference_accuracy(
            source=source,
            adapter=after_dir,
            parent_adapter=before_dir,
            rows=heldout_rows,
            beta=beta,
            cache_dir=cache,
            progress=reporter.callback_for(*STAGES["accuracy"]),
        )
        metrics["heldout_prompts_preference"] = {k: v for k, v in accuracy.items() if k != "margins"}
    if evaluation.source_job_id:
        trained = (evaluation.source_job.result or {}).get("metrics", {})
        split = {k: trained[k] for k in ("eval_rewards/accuracies", "eval_rewards/margins", "eval_loss") if k in trained}
        if split:
            metrics["heldout_split_preference"] = {
                "accuracy": split.get("eval_rewards/accuracies"),
                "mean_margin": split.get("eval_rewards/margins"),
                "loss": split.get("eval_loss"),
                "n": ((evaluation.source_job.result or {}).get("data") or {}).get("heldout_pairs"),
            }
        train_split = {k: trained[k] for k in ("rewards/accuracies", "rewards/margins") if k in trained}
        if train_split:
            metrics["train_last_step"] = train_split

    reporter.log("drift: mean per-token KL from the parent on everyday prompts")
    drift = drift_kl(
        source=source,
        adapter=after_dir,
        parent_adapter=before_dir,
        cache_dir=cache,
        progress=reporter.callback_for(*STAGES["drift"], {"generate": (0.0, 0.5), "eval": (0.5, 1.0)}),
    )
    threshold = params["drift_threshold"]
    value = drift["mean_kl"]
    metrics["drift"] = {
        "mean_kl": value,
        "max_prompt_kl": drift.get("max_prompt_kl"),
        "n_prompts": drift.get("n_prompts"),
        "n_tokens": drift.get("n_tokens"),
        "threshold": threshold,
        "warning": value > threshold,
    }

    def save_metrics(_adapter) -> None:
        Evaluation.objects.filter(pk=evaluation.pk).update(metrics=metrics)

    return Outcome(result={"metrics": metrics}, on_success=save_metrics)


# -- reads -------------------------------------------------------------------------------------


def _arm_counts(evaluation: Evaluation, arm: str) -> dict:
    """Human verdicts of after vs the arm's opponent: wins, losses, ties (both-bad counts as a tie)."""
    pairs = EvaluationPair.objects.filter(evaluation=evaluation, arm=arm)
    judgments = Judgment.objects.filter(
        comparison__evaluation_pair__in=pairs, reviewer__isnull=False, imported=False
    )
    # after is always candidate A of an evaluation comparison (reviewers see random sides).
    counts = judgments.aggregate(
        wins=Count("id", filter=Q(choice=Choice.A)),
        losses=Count("id", filter=Q(choice=Choice.B)),
        ties=Count("id", filter=Q(choice__in=[Choice.TIE, Choice.BOTH_BAD])),
    )
    return {**counts, "pairs": pairs.count()}


def evaluation_summary(evaluation: Evaluation) -> dict:
    """Per arm: the win rate of after over the opponent with a 95% interval (ties half)."""
    arms = []
    present = set(EvaluationPair.objects.filter(evaluation=evaluation).values_list("arm", flat=True))
    for arm in EvaluationPair.Arm:
        if arm.value not in present:
            continue
        counts = _arm_counts(evaluation, arm.value)
        rate = win_rate(wins=counts["wins"], losses=counts["losses"], ties=counts["ties"])
        arms.append({"arm": arm.value, "label": arm.label, "pairs": counts["pairs"], **rate})
    return {"arms": arms, "metrics": evaluation.metrics}


def evaluation_rows(evaluation: Evaluation) -> list[dict]:
    """Per held-out prompt: the after answer and each opponent's, with the verdicts so far."""
    pairs = (
        EvaluationPair.objects.filter(evaluation=evaluation)
        .select_related("prompt", "after_candidate", "other_candidate", "comparison")
        .order_by("prompt_id", "arm")
    )
    verdicts: dict[int, dict] = {}
    for comparison_id, choice in Judgment.objects.filter(
        comparison__evaluation_pair__evaluation=evaluation, reviewer__isnull=False
    ).values_list("comparison_id", "choice"):
        tally = verdicts.setdefault(comparison_id, {"after": 0, "other": 0, "tie": 0})
        key = "after" if choice == Choice.A else "other" if choice == Choice.B else "tie"
        tally[key] += 1
    rows: dict[int, dict] = {}
    for pair in pairs:
        row = rows.setdefault(
            pair.prompt_id,
            {"prompt": pair.prompt, "after": pair.after_candidate.text, "opponents": []},
        )
        row["opponents"].append(
            {
                "arm": pair.arm,
                "label": EvaluationPair.Arm(pair.arm).label,
                "text": pair.other_candidate.text,
                "comparison": pair.comparison_id,
                "verdicts": verdicts.get(pair.comparison_id, {"after": 0, "other": 0, "tie": 0}),
                "required": pair.comparison.required_judgments,
            }
        )
    # Opponents in the arms' order: before first, then the baselines.
    order = {arm: index for index, arm in enumerate(EvaluationPair.Arm.values)}
    for row in rows.values():
        row["opponents"].sort(key=lambda o: order[o["arm"]])
    return list(rows.values())
