"""Evaluations: the loop's last step, from an adapter's answers to a verdict with an interval.

The evaluate job answers the project's held-out prompts with the new adapter ("after") and with
what it came from ("before"), plus optional baselines (the bare base model; the input adapter
with a system prompt an admin wrote). Each (prompt, opponent) becomes an ordinary comparison in
the review queue; reviewers never learn which side is which (sides are drawn per assignment).
Automatic figures come with it: preference accuracy on pairs the adapter never trained on
(split by which answer is the longer), reward margins, and the drift from the parent on everyday
prompts. The job loads the base model once for all of it (``evaluate_outputs``).

An opponent's answer identical to after's is not sent to reviewers (there is nothing to choose)
but counts as ties in the win rate, as many as the verdicts the comparison would have had.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Length

from prefs.models import Choice, Comparison, Judgment, Prompt
from prefs.services.comparisons import CandidateSpec, comparison_create
from prefs.stats.winrate import length_controlled_win_rate, wilson_interval, win_rate
from tuning.models import Evaluation, EvaluationPair, Job
from tuning.services.adapters import adapter_local_dir
from tuning.services.data import preference_rows
from tuning.services.progress import JobReporter
from tuning.services.runner import Outcome, owned_atomic
from tuning.services.sampling import model_label

# What each phase of the job costs, in seconds, measured on the default model with one thread on
# 2 shared, busy cores (docs/evaluation.md). Only their ratios matter: the progress bar gives each
# phase its share of the expected time, so the ETA, extrapolated from the pace measured so far,
# holds from phase to phase on a faster or slower machine.
LOAD_S = 11.0
GENERATE_STEP_S = 0.43  # one decoding step of one batch of up to GENERATE_BATCH answers
GENERATE_BATCH = 16
ACCURACY_ROW_S = 3.2  # both answers of one pair, under after and under before
DRIFT_S = 70.0  # drift_kl on 16 everyday prompts, 48 tokens each
# Before, after and baselines are sampled alike (the engine's before/after defaults), seeded.
TEMPERATURE = 0.7
TOP_P = 0.95


def _candidate_sampling(sampling: dict, sample: dict, evaluation: Evaluation) -> dict:
    # How the answer ended travels with it: "length" marks one cut off by max_new_tokens, which
    # the evaluation page shows admins (reviewers never see a candidate's sampling).
    return {**sampling, "evaluation": evaluation.pk, "tokens": sample["tokens"], "finish_reason": sample["finish_reason"]}


def evaluation_group_key(evaluation: Evaluation, prompt) -> str:
    """The comparison group of an evaluation's answers to one prompt (prefs' Comparison.group_key)."""
    return f"evaluation:{evaluation.pk}:prompt:{prompt.pk}"


def _store_pairs(evaluation: Evaluation, arm: str, prompts, after_samples, other_samples, *, job: Job, other_label: str, other_adapter_id, sampling: dict) -> dict:
    """Comparisons for one arm; identical answers are not sent (nothing to choose) but counted:
    each stands for as many ties as the verdicts its comparison would have had."""
    after = evaluation.after_adapter
    made = identical = 0
    with owned_atomic(job):
        existing = set(EvaluationPair.objects.filter(evaluation=evaluation, arm=arm).values_list("prompt_id", flat=True))
        for prompt, after_sample, other_sample in zip(prompts, after_samples, other_samples, strict=True):
            if prompt.pk in existing:
                continue
            after_text, other_text = after_sample["text"], other_sample["text"]
            if after_text.strip() == other_text.strip():
                identical += 1
                continue
            comparison = comparison_create(
                project=evaluation.project,
                prompt=prompt,
                a=CandidateSpec(after_text, source=after.name, adapter_id=after.pk, sampling=_candidate_sampling(sampling, after_sample, evaluation)),
                b=CandidateSpec(other_text, source=other_label, adapter_id=other_adapter_id, sampling=_candidate_sampling(sampling, other_sample, evaluation)),
                origin=Comparison.Origin.EVALUATION,
                # Every opponent's comparison of this prompt holds the same after text: a
                # reviewer who saw two would know which answer is the new adapter's.
                group_key=evaluation_group_key(evaluation, prompt),
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
    return {"comparisons": made, "identical": identical, "identical_ties": identical * evaluation.project.overlap}


def evaluation_phases(*, prompts: int, arms: list[str], max_new_tokens: int, rows: int) -> dict[str, tuple[float, float]]:
    """Each phase of the evaluate job's one engine call -> its share of the progress bar.

    Shares follow the expected seconds of each phase (the constants above), so the bar moves at
    an even pace and the ETA extrapolated from it is honest. A generation phase is bounded by its
    longest answer: ``max_new_tokens`` decoding steps per batch.
    """
    generate_s = -(-prompts // GENERATE_BATCH) * max_new_tokens * GENERATE_STEP_S
    costs = {"load": LOAD_S}
    for name in ["after", *arms]:
        costs[f"generate-{name}"] = generate_s
    if rows:
        costs["accuracy"] = rows * ACCURACY_ROW_S
    # drift_kl answers first (about half its time), then compares the distributions.
    costs["drift-generate"] = costs["drift"] = DRIFT_S / 2
    total = sum(costs.values())
    phases, start = {}, 0.0
    for name, cost in costs.items():
        phases[name] = (start, start + cost / total)
        start += cost / total
    return phases


def run_evaluation(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    from tuning.engine.evaluation import evaluate_outputs

    evaluation = Evaluation.objects.select_related("after_adapter", "before_adapter", "project").get(job=job)
    params = job.params
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
    # (arm, what answers, its system prompt, its label as a candidate's source)
    arms = [(EvaluationPair.Arm.BEFORE, "before", None, model_label(before, base_name))]
    if params["baseline_base"] and before is not None:
        arms.append((EvaluationPair.Arm.BASE, "base", None, f"base:{base_name}"))
    if params["baseline_system_prompt"]:
        arms.append(
            (EvaluationPair.Arm.SYSTEM_PROMPT, "before", params["baseline_system_prompt"],
             f"{model_label(before, base_name)}+system-prompt")
        )
    if not prompts:
        arms = []
        reporter.log("the project has no held-out prompts: no comparisons, automatic metrics only")
    heldout_rows = preference_rows(job.preference_set, split=Prompt.Split.HELDOUT) if job.preference_set_id else []
    beta = params.get("beta") or (after.metadata.get("hyperparameters") or {}).get("beta") or 0.1
    if prompts:
        reporter.log(f"answering {len(prompts)} held-out prompts: after, then {', '.join(str(arm) for arm, *_ in arms)}")
    if heldout_rows:
        reporter.log(f"then preference accuracy on {len(heldout_rows)} pairs of held-out prompts")
    reporter.log("then drift: mean per-token KL from the parent on everyday prompts")
    phases = evaluation_phases(
        prompts=len(prompts), arms=[str(arm) for arm, *_ in arms],
        max_new_tokens=params["eval_max_new_tokens"], rows=len(heldout_rows),
    )
    outputs = evaluate_outputs(
        source=job.base_model.source,
        after_adapter=after_dir,
        before_adapter=before_dir,
        prompts=[p.messages for p in prompts],
        arms=[{"name": str(arm), "model": model, "system_prompt": system_prompt} for arm, model, system_prompt, _ in arms],
        rows=heldout_rows or None,
        beta=beta,
        seed=params["seed"],
        max_new_tokens=params["eval_max_new_tokens"],
        temperature=TEMPERATURE,
        top_p=TOP_P,
        cache_dir=settings.PREFLOOP_MODEL_CACHE,
        progress=reporter.callback_for(0.0, 1.0, phases),
    )
    metrics["seconds"] = outputs["seconds"]
    metrics["cut_off"] = {"after": sum(1 for s in outputs["after"] if s["finish_reason"] == "length")}
    for arm, _model, system_prompt, label in arms:
        answers = outputs["arms"][str(arm)]
        metrics["cut_off"][str(arm)] = sum(1 for s in answers if s["finish_reason"] == "length")
        other_adapter_id = before.pk if (before is not None and arm != EvaluationPair.Arm.BASE) else None
        metrics["arms"][str(arm)] = _store_pairs(
            evaluation, arm, prompts, outputs["after"], answers, job=job,
            other_label=label, other_adapter_id=other_adapter_id,
            sampling={**sampling, "system_prompt": system_prompt} if system_prompt else sampling,
        )
    if any(metrics["cut_off"].values()):
        reporter.log(
            f"{sum(metrics['cut_off'].values())} answer(s) reached the {params['eval_max_new_tokens']}-token limit "
            "and were cut off; raise the evaluation answer length"
        )

    metrics["beta"] = beta
    if outputs["accuracy"] is not None:
        metrics["heldout_prompts_preference"] = {k: v for k, v in outputs["accuracy"].items() if k != "margins"}
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

    drift = outputs["drift"]
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


# Below this drift from the parent (mean per-token KL on everyday prompts, nats per token) the
# adapter is taken to answer as its parent does.
NEGLIGIBLE_DRIFT = 0.01
_OUTCOME = {Choice.A: 1.0, Choice.B: 0.0, Choice.TIE: 0.5, Choice.BOTH_BAD: 0.5}


def _arm_verdicts(evaluation: Evaluation, arm: str) -> list[tuple[float, int, int]]:
    """Human verdicts of after vs the arm's opponent -> (outcome, length difference, comparison).

    Outcome 1 after won, 0 it lost, 0.5 a tie or both bad; the length difference is after's
    answer minus the opponent's, in characters (as AlpacaEval measures it).
    """
    # after is always candidate A of an evaluation comparison (reviewers see random sides).
    rows = (
        Judgment.objects.filter(
            comparison__evaluation_pair__evaluation=evaluation,
            comparison__evaluation_pair__arm=arm,
            reviewer__isnull=False,
            imported=False,
        )
        .annotate(after_len=Length("comparison__candidate_a__text"), other_len=Length("comparison__candidate_b__text"))
        .values_list("choice", "after_len", "other_len", "comparison_id")
    )
    return [(_OUTCOME[choice], after_len - other_len, comparison) for choice, after_len, other_len, comparison in rows]


def evaluation_summary(evaluation: Evaluation) -> dict:
    """Per arm: the win rate of after over the opponent with a 95% interval (ties half), and the
    length-controlled win rate beside it.

    Pairs whose answers were identical were never sent; each counts as the ties its comparison
    would have collected (``identical_ties``, written by the job), with a length difference of 0.
    """
    arms = []
    pairs = dict(
        EvaluationPair.objects.filter(evaluation=evaluation).values("arm").annotate(n=Count("id")).values_list("arm", "n")
    )
    stored = (evaluation.metrics or {}).get("arms") or {}
    for arm in EvaluationPair.Arm:
        identical = int((stored.get(arm.value) or {}).get("identical") or 0)
        identical_ties = int((stored.get(arm.value) or {}).get("identical_ties") or 0)
        if arm.value not in pairs and not identical:
            continue
        verdicts = _arm_verdicts(evaluation, arm.value)
        wins = sum(1 for outcome, _, _ in verdicts if outcome == 1.0)
        losses = sum(1 for outcome, _, _ in verdicts if outcome == 0.0)
        rate = win_rate(wins=wins, losses=losses, ties=len(verdicts) - wins - losses + identical_ties)
        outcomes = [outcome for outcome, _, _ in verdicts] + [0.5] * identical_ties
        diffs = [diff for _, diff, _ in verdicts] + [0] * identical_ties
        # Resample whole pairs: the verdicts of one comparison (or one identical pair) move together.
        groups = [comparison for _, _, comparison in verdicts] + [
            -1 - index // max(evaluation.project.overlap, 1) for index in range(identical_ties)
        ]
        lc = length_controlled_win_rate(outcomes, diffs, groups=groups)
        arms.append(
            {
                "arm": arm.value, "label": arm.label, "pairs": pairs.get(arm.value, 0), **rate,
                "identical": identical,
                "lc": {key: lc[key] for key in ("rate", "low", "high")},
            }
        )
    return {"arms": arms, "metrics": evaluation.metrics}


def evaluation_shows_no_change(*, metrics: dict, arms: list[dict]) -> bool:
    """True when nothing measured tells the after adapter from before.

    All three must hold, once the job has written its metrics: the held-out preference accuracy's
    95% interval contains 0.5 (or there were no held-out pairs to score); the reviewers' win rate
    of after over before has no verdicts yet or its 95% interval contains 0.5; and the drift from
    the parent on everyday prompts is below NEGLIGIBLE_DRIFT. The page then says "no measurable
    change" and does not offer Promote as the primary action.
    """
    drift = (metrics or {}).get("drift")
    if not drift or drift.get("mean_kl") is None:
        return False
    accuracy = metrics.get("heldout_prompts_preference") or {}
    low, high = accuracy.get("low"), accuracy.get("high")
    if low is None and accuracy.get("n"):  # written before accuracy carried its interval
        low, high = wilson_interval(accuracy["accuracy"] * accuracy["n"], accuracy["n"])
    accuracy_at_chance = low is None or low <= 0.5 <= high
    before = next((arm for arm in arms if arm["arm"] == EvaluationPair.Arm.BEFORE), None)
    verdict_at_chance = before is None or before["n"] == 0 or before["low"] <= 0.5 <= before["high"]
    return accuracy_at_chance and verdict_at_chance and drift["mean_kl"] < NEGLIGIBLE_DRIFT


def _cut_off(candidate) -> int | None:
    """The token limit that cut this answer off, or None when it ended by itself."""
    sampling = candidate.sampling or {}
    return sampling.get("max_new_tokens") if sampling.get("finish_reason") == "length" else None


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
            {
                "prompt": pair.prompt,
                "after": pair.after_candidate.text,
                "after_cut_off": _cut_off(pair.after_candidate),
                "opponents": [],
            },
        )
        row["opponents"].append(
            {
                "arm": pair.arm,
                "label": EvaluationPair.Arm(pair.arm).label,
                "text": pair.other_candidate.text,
                "cut_off": _cut_off(pair.other_candidate),
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
