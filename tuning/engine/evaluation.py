"""Evaluation helpers: implicit-reward preference accuracy, before/after outputs, drift from the parent.

* ``preference_accuracy``: on held-out pairs, how often the adapter's implicit reward (against
  its parent) ranks the chosen response above the rejected one.
* ``before_after``: the same prompts answered by two policies with the same seed, e.g. the parent
  (optionally with a system prompt: the "just ask nicely" baseline) and the new adapter.
* ``drift_kl``: mean per-token KL(new || parent) on everyday prompts that have nothing to do with
  the preference data — a tuned adapter that rewrote ordinary conversation shows up here.
* ``evaluate_outputs``: all of it for one evaluate job with the base model loaded once: the after
  answers, each opponent arm's answers, preference accuracy and drift.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tuning.engine.errors import BadInput
from tuning.engine.progress import ProgressCallback

# Two-sided 95%: the standard normal quantile at 0.975.
Z_95 = 1.959963984540054
EVERYDAY_PROMPTS = Path(__file__).resolve().parent / "data" / "everyday_prompts.json"


def everyday_prompts() -> list[list[dict]]:
    """The shipped everyday prompts, as one-message conversations."""
    data = json.loads(EVERYDAY_PROMPTS.read_text())
    return [[{"role": "user", "content": text}] for text in data["prompts"]]


def wilson_interval(successes: float, n: int, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion; (0, 1) with no trials.

    The same formula as prefs.stats.winrate's; repeated here because the engine imports nothing
    of the web project.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * math.sqrt(max(p * (1.0 - p) / n + z * z / (4.0 * n * n), 0.0)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _accuracy(margins: list[float]) -> dict:
    right = sum(1 for m in margins if m > 0)
    ties = sum(1 for m in margins if m == 0)
    n = len(margins)
    low, high = wilson_interval(right + 0.5 * ties, n)
    return {"accuracy": (right + 0.5 * ties) / n if n else None, "low": low, "high": high, "n": n, "ties": ties}


def accuracy_by_length(rewards: list[dict]) -> dict:
    """Preference accuracy from implicit rewards, overall and split by which answer is longer.

    An adapter that learned "shorter wins" scores well where the chosen answer is the shorter one
    and below chance where it is the longer one; the overall figure hides that. Lengths are the
    responses' token counts; pairs of equal length are in neither split. Each figure comes with
    its Wilson 95% interval (a tie, i.e. equal rewards, counts half). ``length_balanced`` is the
    mean of the two splits' accuracies: what a judge blind to length would score.
    """
    margins = [r["margin"] for r in rewards]
    longer = [r["margin"] for r in rewards if r["chosen_tokens"] > r["rejected_tokens"]]
    shorter = [r["margin"] for r in rewards if r["chosen_tokens"] < r["rejected_tokens"]]
    overall = _accuracy(margins)
    split_longer, split_shorter = _accuracy(longer), _accuracy(shorter)
    balanced = None
    if longer and shorter:
        balanced = (split_longer["accuracy"] + split_shorter["accuracy"]) / 2
    return {
        **overall,
        "mean_margin": sum(margins) / len(margins) if margins else None,
        "chosen_longer": split_longer,
        "chosen_shorter": split_shorter,
        "length_balanced": balanced,
        "margins": margins,
    }


def preference_accuracy(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    parent_adapter: str | os.PathLike | None,
    rows: list[dict],
    beta: float = 0.1,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Share of ``rows`` whose chosen response gets the higher implicit reward.

    A tie (equal rewards, e.g. an adapter identical to its parent) counts as half right, so a
    policy with no preference scores 0.5 — chance. Returns ``{"accuracy", "low", "high",
    "mean_margin", "n", "ties", "margins", "chosen_longer", "chosen_shorter",
    "length_balanced"}`` (see ``accuracy_by_length``).
    """
    from tuning.engine.reward import implicit_rewards

    rewards = implicit_rewards(
        source=source,
        adapter=adapter,
        parent_adapter=parent_adapter,
        rows=rows,
        beta=beta,
        cache_dir=cache_dir,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        max_length=max_length,
        progress=progress,
    )
    return accuracy_by_length(rewards)


def before_after(
    *,
    source: str | os.PathLike,
    before_adapter: str | os.PathLike | None,
    after_adapter: str | os.PathLike | None,
    prompts: list[list[dict]],
    seed: int = 0,
    max_new_tokens: int = 128,
    system_prompt: str | None = None,
    after_system_prompt: str | None = None,
    temperature: float = 0.7,
    top_p: float = 0.95,
    batch_size: int = 16,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """Answer each prompt with the "before" and the "after" policy, same seed and settings.

    ``system_prompt`` is given to the *before* side only: with the parent as before, that is the
    system-prompt baseline (is tuning better than asking nicely?). ``after_system_prompt`` does
    the same for the after side. Returns one ``{"prompt", "before", "after", ...}`` per prompt,
    where before/after are texts and ``before_tokens`` / ``before_finish_reason`` (and the
    after ones) describe them.
    """
    from tuning.engine.adapters import active_adapter
    from tuning.engine.generation import generate_with
    from tuning.engine.reward import load_policy_and_parent

    if not isinstance(prompts, list) or not prompts:
        raise BadInput("the prompt list is empty: there is nothing to compare")
    model, tokenizer, after_name, before_name = load_policy_and_parent(
        source, after_adapter, before_adapter, cache_dir=cache_dir, device=device, dtype=dtype
    )
    settings = {
        "n": 1,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "batch_size": batch_size,
        "progress": progress,
    }
    with active_adapter(model, before_name):
        before = generate_with(model, tokenizer, prompts, system_prompt=system_prompt, phase="generate-before", **settings)
    with active_adapter(model, after_name):
        after = generate_with(model, tokenizer, prompts, system_prompt=after_system_prompt, phase="generate-after", **settings)
    results = []
    for prompt, (b,), (a,) in zip(prompts, before, after, strict=True):
        results.append(
            {
                "prompt": prompt,
                "before": b["text"],
                "after": a["text"],
                "before_tokens": b["tokens"],
                "after_tokens": a["tokens"],
                "before_finish_reason": b["finish_reason"],
                "after_finish_reason": a["finish_reason"],
            }
        )
    return results


def drift_kl(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    parent_adapter: str | os.PathLike | None,
    prompts: list[list[dict]] | None = None,
    max_new_tokens: int = 48,
    seed: int = 0,
    batch_size: int = 8,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Mean per-token KL(adapter || parent) on the adapter's own answers to everyday prompts.

    The adapter answers each prompt (temperature 1, seeded); at every position of that answer the
    full next-token distributions of both policies are compared exactly, and the KL (in nats) is
    averaged over all answer tokens. 0 means the adapter behaves like its parent there.
    Returns ``{"mean_kl", "max_prompt_kl", "n_prompts", "n_tokens", "per_prompt"}``.
    """
    from tuning.engine.reward import load_policy_and_parent

    prompts = _drift_prompts(prompts)
    model, tokenizer, new_name, parent_name = load_policy_and_parent(
        source, adapter, parent_adapter, cache_dir=cache_dir, device=device, dtype=dtype
    )
    return drift_kl_with(
        model, tokenizer, new_name, parent_name, prompts=prompts, max_new_tokens=max_new_tokens, seed=seed,
        batch_size=batch_size, progress=progress,
    )


def _drift_prompts(prompts: list[list[dict]] | None) -> list[list[dict]]:
    from tuning.engine.chat import check_messages

    prompts = everyday_prompts() if prompts is None else prompts
    if not prompts:
        raise BadInput("the prompt list is empty: there is nothing to measure drift on")
    return [check_messages(p, f"prompt {i}") for i, p in enumerate(prompts)]


def drift_kl_with(
    model,
    tokenizer,
    new_name: str | None,
    parent_name: str | None,
    *,
    prompts: list[list[dict]] | None = None,
    max_new_tokens: int = 48,
    seed: int = 0,
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    phases: tuple[str, str] = ("generate", "eval"),
) -> dict:
    """``drift_kl`` on a model already loaded with both adapters; ``phases`` names the progress
    events of its two halves (answering, then comparing the distributions)."""
    import torch

    from tuning.engine.adapters import active_adapter
    from tuning.engine.chat import prompt_ids
    from tuning.engine.generation import generate_with
    from tuning.engine.loading import input_device
    from tuning.engine.logprobs import length_grouped, pack, response_logits, supports_shared_prompt
    from tuning.engine.progress import Reporter

    prompts = _drift_prompts(prompts)
    with active_adapter(model, new_name):
        answers = generate_with(
            model,
            tokenizer,
            prompts,
            n=1,
            temperature=1.0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            phase=phases[0],
            return_ids=True,
        )
    groups = []
    for prompt, (answer,) in zip(prompts, answers, strict=True):
        # An empty answer still has one position to compare: the one that chose to stop.
        response = answer["token_ids"] or [tokenizer.eos_token_id]
        groups.append((prompt_ids(tokenizer, prompt), response))
    device_ = input_device(model)
    share = supports_shared_prompt(model)
    batches = length_grouped([len(p) + len(r) for p, r in groups], batch_size)
    reporter = Reporter(progress, phase=phases[1], total=len(batches))
    per_prompt = [0.0] * len(groups)
    total_kl, total_tokens = 0.0, 0
    with torch.no_grad():
        for number, indices in enumerate(batches, start=1):
            packed = pack(
                [(groups[i][0], [groups[i][1]]) for i in indices], pad_token_id=tokenizer.pad_token_id, share_prompt=share
            ).to(device_)
            with active_adapter(model, new_name):
                new_logp = torch.log_softmax(response_logits(model, packed), dim=-1)
            with active_adapter(model, parent_name):
                parent_logp = torch.log_softmax(response_logits(model, packed), dim=-1)
            token_kl = (new_logp.exp() * (new_logp - parent_logp)).sum(-1).clamp(min=0.0)
            sums = torch.zeros(packed.num_segments, dtype=token_kl.dtype, device=token_kl.device)
            sums = sums.index_add(0, packed.segment.to(token_kl.device), token_kl).cpu()
            for position, i in enumerate(indices):
                length = int(packed.lengths[position])
                per_prompt[i] = float(sums[position]) / length
                total_kl += float(sums[position])
                total_tokens += length
            reporter.send(number)
    return {
        "mean_kl": total_kl / total_tokens,
        "max_prompt_kl": max(per_prompt),
        "n_prompts": len(groups),
        "n_tokens": total_tokens,
        "per_prompt": per_prompt,
    }


# What an opponent arm answers with: the before adapter (the bare base where before is None) or
# the bare base.
ARM_MODELS = ("before", "base")
# Everyday prompts an evaluation measures drift on (the first of the shipped ones): one batch of
# answers. On the default model and 2 busy CPU cores all 40 took 213 s, 60% of a 4-prompt
# evaluation, and the mean over ~700 answer tokens still tells "about 0" from a real shift.
EVALUATION_DRIFT_PROMPTS = 16


def _check_arms(arms: Any) -> list[dict]:
    if not isinstance(arms, list):
        raise BadInput(f"arms must be a list of {{'name', 'model', 'system_prompt'}}, got {type(arms).__name__}")
    seen = set()
    for number, arm in enumerate(arms):
        if not isinstance(arm, dict) or not isinstance(arm.get("name"), str) or not arm["name"]:
            raise BadInput(f"arm {number}: expected a dict with a 'name'")
        if arm.get("model") not in ARM_MODELS:
            raise BadInput(f"arm {arm['name']}: model must be one of {', '.join(ARM_MODELS)}, got {arm.get('model')!r}")
        if arm["name"] in seen or arm["name"] == "after":
            raise BadInput(f"arm {arm['name']}: each arm needs its own name, other than 'after'")
        seen.add(arm["name"])
    return arms


def evaluate_outputs(
    *,
    source: str | os.PathLike,
    after_adapter: str | os.PathLike | None,
    before_adapter: str | os.PathLike | None,
    prompts: list[list[dict]],
    arms: list[dict],
    rows: list[dict] | None = None,
    beta: float = 0.1,
    drift: bool = True,
    drift_prompts: list[list[dict]] | None = None,
    drift_max_new_tokens: int = 48,
    seed: int = 0,
    max_new_tokens: int = 384,
    temperature: float = 0.7,
    top_p: float = 0.95,
    batch_size: int = 16,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """One evaluation with the base model loaded once, both adapters attached.

    The after adapter answers ``prompts``; so does each of ``arms`` (``{"name", "model":
    "before"|"base", "system_prompt"}``: the before adapter, or the bare base, optionally with a
    system prompt), all sampled alike with the same seed, in batches of ``batch_size``. Then,
    with ``rows``, the after adapter's preference accuracy against before (``accuracy_by_length``),
    and with ``drift``, its drift from before on everyday prompts (``drift_kl``).

    Progress phases, in order: "load", "generate-after", "generate-<arm name>", "accuracy",
    "drift-generate", "drift". Returns ``{"after": [sample], "arms": {name: [sample]},
    "accuracy": dict | None, "drift": dict | None, "seconds": {phase: seconds}}``; a sample is
    ``{"text", "tokens", "finish_reason"}`` ("length" when ``max_new_tokens`` cut it off).
    """
    import time

    from tuning.engine.adapters import active_adapter
    from tuning.engine.generation import _check_prompts, generate_with
    from tuning.engine.progress import Reporter
    from tuning.engine.reward import implicit_rewards_with, load_policy_and_parent

    prompts = _check_prompts(prompts)
    arms = _check_arms(arms)
    if not beta > 0:
        raise BadInput(f"beta must be > 0, got {beta}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    loading = Reporter(progress, phase="load", total=1)
    loading.message("loading the base model and both adapters")
    model, tokenizer, after_name, before_name = load_policy_and_parent(
        source, after_adapter, before_adapter, cache_dir=cache_dir, device=device, dtype=dtype
    )
    loading.send(1)
    seconds["load"] = time.perf_counter() - started
    sampling = {
        "n": 1,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "batch_size": batch_size,
        "progress": progress,
    }
    sides = [("after", after_name, None)] + [
        (arm["name"], before_name if arm["model"] == "before" else None, arm.get("system_prompt") or None)
        for arm in arms
    ]
    answers: dict[str, list[dict]] = {}
    for name, adapter_name, system_prompt in sides:
        started = time.perf_counter()
        phase = f"generate-{name}"
        if prompts:
            with active_adapter(model, adapter_name):
                samples = generate_with(model, tokenizer, prompts, system_prompt=system_prompt, phase=phase, **sampling)
            answers[name] = [group[0] for group in samples]
        else:
            answers[name] = []
        seconds[phase] = time.perf_counter() - started

    accuracy = None
    if rows:
        started = time.perf_counter()
        rewards = implicit_rewards_with(
            model, tokenizer, after_name, before_name, rows, beta=beta, progress=progress, phase="accuracy"
        )
        accuracy = accuracy_by_length(rewards)
        seconds["accuracy"] = time.perf_counter() - started
    measured_drift = None
    if drift:
        started = time.perf_counter()
        measured_drift = drift_kl_with(
            model, tokenizer, after_name, before_name,
            prompts=everyday_prompts()[:EVALUATION_DRIFT_PROMPTS] if drift_prompts is None else drift_prompts,
            max_new_tokens=drift_max_new_tokens, seed=seed, batch_size=batch_size, progress=progress,
            phases=("drift-generate", "drift"),
        )
        seconds["drift"] = time.perf_counter() - started
    return {
        "after": answers.pop("after"),
        "arms": answers,
        "accuracy": accuracy,
        "drift": measured_drift,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
