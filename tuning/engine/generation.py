"""Batched sampling: N responses per prompt, with the chat template, left padding and the KV cache.

All (prompt, sample) jobs are sorted by prompt length and cut into batches of ``batch_size``
sequences, so a batch holds prompts of similar length (little padding) and the N samples of one
prompt usually share a batch. The global torch seed is set once before the first batch, so the
same call (same prompts, seed, batch size, device) returns the same texts.
"""

from __future__ import annotations

import os
from typing import Any

from tuning.engine.errors import BadInput
from tuning.engine.progress import ProgressCallback


def _check_prompts(prompts: Any) -> list[list[dict]]:
    from tuning.engine.chat import check_messages

    if not isinstance(prompts, list):
        raise BadInput(f"prompts must be a list of conversations, got {type(prompts).__name__}")
    return [check_messages(p, f"prompt {i}") for i, p in enumerate(prompts)]


def _check_sampling(n: int, temperature: float, top_p: float, max_new_tokens: int, batch_size: int) -> None:
    checks = [
        (isinstance(n, int) and n >= 1, f"n must be an integer >= 1, got {n!r}"),
        (temperature >= 0, f"temperature must be >= 0 (0 = greedy), got {temperature}"),
        (0 < top_p <= 1, f"top_p must be in (0, 1], got {top_p}"),
        (max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {max_new_tokens}"),
        (batch_size >= 1, f"batch_size must be >= 1, got {batch_size}"),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInput(message)


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end an answer: the tokenizer's end token and the model's own."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    ids.discard(None)
    return sorted(ids)


def generate_with(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict]],
    *,
    n: int = 1,
    temperature: float = 0.7,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    seed: int = 0,
    batch_size: int = 16,
    system_prompt: str | None = None,
    progress: ProgressCallback | None = None,
    phase: str = "generate",
    return_ids: bool = False,
) -> list[list[dict]]:
    """``generate`` on a model already loaded (base or PeftModel with its adapter active).

    ``return_ids`` adds each sample's generated ``token_ids`` (end token included).
    """
    import torch

    from tuning.engine.chat import prompt_ids, with_system_prompt
    from tuning.engine.loading import input_device
    from tuning.engine.progress import Reporter

    prompts = _check_prompts(prompts)
    _check_sampling(n, temperature, top_p, max_new_tokens, batch_size)
    if not prompts:
        return []
    encoded = [prompt_ids(tokenizer, with_system_prompt(p, system_prompt)) for p in prompts]
    jobs = [(i, j) for i in range(len(prompts)) for j in range(n)]
    # Longest prompts first: the first batch shows at once whether memory suffices.
    jobs.sort(key=lambda job: (-len(encoded[job[0]]), job))
    batches = [jobs[k : k + batch_size] for k in range(0, len(jobs), batch_size)]
    results: list[list[dict | None]] = [[None] * n for _ in prompts]
    stops = stop_token_ids(model, tokenizer)
    pad = tokenizer.pad_token_id
    device = input_device(model)
    reporter = Reporter(progress, phase=phase, total=len(batches))
    sampling = {"do_sample": False}
    if temperature > 0:
        # top_k=0 turns off transformers' default top-50 cut, so only temperature and top_p shape
        # the distribution, as the caller asked.
        sampling = {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p), "top_k": 0}

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    was_training = model.training
    model.eval()
    try:
        for number, batch in enumerate(batches, start=1):
            width = max(len(encoded[i]) for i, _ in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (i, _) in enumerate(batch):
                ids = encoded[i]
                # Left padding: every prompt ends at the last column, where generation continues.
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention[row, width - len(ids) :] = 1
            with torch.no_grad():
                output = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention.to(device),
                    max_new_tokens=max_new_tokens,
                    pad_token_id=pad,
                    eos_token_id=stops,
                    use_cache=True,
                    **sampling,
                )
            new_tokens = output[:, width:].cpu().tolist()
            new_tokens_total = 0
            for row, (i, j) in enumerate(batch):
                tokens = new_tokens[row]
                end = next((k for k, t in enumerate(tokens) if t in stops), None)
                if end is None:
                    kept, count, reason = tokens, len(tokens), "length"
                else:
                    kept, count, reason = tokens[:end], end + 1, "stop"
                new_tokens_total += count
                results[i][j] = {
                    "text": tokenizer.decode(kept, skip_special_tokens=True),
                    "tokens": count,
                    "finish_reason": reason,
                }
                if return_ids:
                    results[i][j]["token_ids"] = tokens[:count]
            reporter.send(number, message=f"generated {number}/{len(batches)} batches", tokens=new_tokens_total)
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def generate(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None = None,
    prompts: list[list[dict]],
    n: int = 1,
    temperature: float = 0.7,
    top_p: float = 0.95,
    max_new_tokens: int = 128,
    seed: int = 0,
    batch_size: int = 16,
    system_prompt: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    progress: ProgressCallback | None = None,
) -> list[list[dict]]:
    """Sample ``n`` responses for each prompt from base + ``adapter``.

    Returns one list per prompt of ``{"text", "tokens", "finish_reason"}``: ``tokens`` counts the
    generated tokens (the end token included), ``finish_reason`` is "stop" when the model ended
    its answer and "length" when ``max_new_tokens`` cut it. ``temperature=0`` is greedy.
    """
    from tuning.engine.loading import load_policy

    prompts = _check_prompts(prompts)
    _check_sampling(n, temperature, top_p, max_new_tokens, batch_size)
    model, tokenizer = load_policy(source, adapter, cache_dir=cache_dir, device=device, dtype=dtype)
    return generate_with(
        model,
        tokenizer,
        prompts,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
        system_prompt=system_prompt,
        progress=progress,
    )
