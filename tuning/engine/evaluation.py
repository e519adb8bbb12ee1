"""Evaluation helpers: implicit-reward preference accuracy, before/after outputs, drift from the parent.

* ``preference_accuracy``: on held-out pairs, how often the adapter's implicit reward (against
  its parent) ranks the chosen response above the rejected one.
* ``before_after``: the same prompts answered by two policies with the same seed, e.g. the parent
  (optionally with a system prompt: the "just ask nicely" baseline) and the new adapter.
* ``drift_kl``: mean per-token KL(new || parent) on everyday prompts that have nothing to do with
  the preference data — a tuned adapter that rewrote ordinary conversation shows up here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tuning.engine.errors import BadInput
from tuning.engine.progress import ProgressCallback

EVERYDAY_PROMPTS = Path(__file__).resolve().parent / "data" / "everyday_prompts.json"


def everyday_prompts() -> list[list[dict]]:
    """The shipped everyday prompts, as one-message conversations."""
    data = json.loads(EVERYDAY_PROMPTS.read_text())
    return [[{"role": "user", "content": text}] for text in data["prompts"]]


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
    policy with no preference scores 0.5 — chance. Returns ``{"accuracy", "mean_margin", "n",
    "ties", "margins"}``.
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
    margins = [r["margin"] for r in rewards]
    ties = sum(1 for m in margins if m == 0)
    right = sum(1 for m in margins if m > 0)
    return {
        "accuracy": (right + 0.5 * ties) / len(margins),
        "mean_margin": sum(margins) / len(margins),
        "n": len(margins),
        "ties": ties,
        "margins": margins,
    }


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
    import torch

    from tuning.engine.adapters import active_adapter
    from tuning.engine.chat import check_messages, prompt_ids
    from tuning.engine.generation import generate_with
    from tuning.engine.loading import input_device
    from tuning.engine.logprobs import length_grouped, pack, response_logits, supports_shared_prompt
    from tuning.engine.progress import Reporter
    from tuning.engine.reward import load_policy_and_parent

    prompts = everyday_prompts() if prompts is None else prompts
    if not prompts:
        raise BadInput("the prompt list is empty: there is nothing to measure drift on")
    prompts = [check_messages(p, f"prompt {i}") for i, p in enumerate(prompts)]
    model, tokenizer, new_name, parent_name = load_policy_and_parent(
        source, adapter, parent_adapter, cache_dir=cache_dir, device=device, dtype=dtype
    )
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
    reporter = Reporter(progress, phase="eval", total=len(batches))
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
