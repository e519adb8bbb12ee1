"""Rejection sampling: sample N responses per prompt, score them, keep the best.

Then either fine-tune the policy on the kept responses (TRL ``SFTTrainer``, a new adapter version:
best-of-N distillation) or emit best-vs-worst pairs, usable as DPO rows or as comparisons for
human reviewers. The reward distribution of all samples and of the kept ones is reported, so a
caller can see how much selection bought.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tuning.engine.adapters import LoraSpec
from tuning.engine.errors import BadInput, Cancelled, TrainingDiverged
from tuning.engine.progress import ProgressCallback

MODES = ("sft", "pairs")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass
class RejectionConfig:
    """Settings of one rejection-sampling run."""

    # Samples per prompt.
    n: int = 4
    # "sft": distil the kept responses into a new adapter; "pairs": emit best-vs-worst pairs.
    mode: str = "sft"
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int = 0
    # Sequences per generation batch.
    batch_size: int = 16
    # Optional system prompt put before every prompt when sampling (and when distilling).
    system_prompt: str | None = None
    # Pairs mode: skip a prompt whose best and worst rewards differ by no more than this.
    min_margin: float = 0.0
    # SFT settings (mode "sft").
    learning_rate: float = 1e-4
    epochs: int = 1
    max_steps: int | None = None
    sft_batch_size: int = 4
    grad_accum: int = 1
    # Longest prompt + response in SFT, in tokens (longer ones are cut at the end).
    max_length: int = 512
    # Shape of the new adapter when the policy is the bare base.
    lora: LoraSpec = field(default_factory=LoraSpec)

    def __post_init__(self) -> None:
        # A dict (as decoded from JSON) is as good as a LoraSpec.
        if not isinstance(self.lora, LoraSpec):
            self.lora = LoraSpec.from_dict(self.lora)

    @classmethod
    def from_value(cls, value: RejectionConfig | dict | None) -> RejectionConfig:
        if value is None:
            return cls()
        if isinstance(value, RejectionConfig):
            return value
        if not isinstance(value, dict):
            raise BadInput(f"rejection config must be a RejectionConfig or a dict, got {type(value).__name__}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise BadInput(f"unknown rejection-sampling settings: {', '.join(sorted(unknown))}")
        return cls(**value)

    def check(self) -> None:
        checks = [
            (self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}"),
            (isinstance(self.n, int) and self.n >= 2 or self.mode == "sft" and self.n >= 1,
             f"n must be >= 1 (>= 2 for pairs), got {self.n!r}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.sft_batch_size >= 1, f"sft_batch_size must be >= 1, got {self.sft_batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)


def distribution(values: list[float]) -> dict:
    """Mean, standard deviation, extremes and quantiles of a list of rewards."""
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "quantiles": {}}
    ordered = sorted(values)

    def quantile(q: float) -> float:
        # Linear interpolation between the closest ranks (numpy's default).
        position = q * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": ordered[0],
        "max": ordered[-1],
        "quantiles": {f"p{round(q * 100)}": quantile(q) for q in QUANTILES},
    }


def best_and_worst(samples: list[dict]) -> tuple[int, int]:
    """Indices of the sample to keep and of the worst one, by reward.

    An answer that ended by itself beats one that ``max_new_tokens`` cut off, whatever their
    rewards: distilling a cut-off answer would teach the adapter to stop mid-sentence. Ties go
    to the earlier sample, so the choice is reproducible.
    """
    best = max(
        range(len(samples)),
        key=lambda k: (samples[k].get("finish_reason") != "length", samples[k]["reward"], -k),
    )
    worst = min(range(len(samples)), key=lambda k: (samples[k]["reward"], k))
    return best, worst


def rejection_sample(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    prompts: list[list[dict]],
    reward: dict,
    config: RejectionConfig | dict | None = None,
    output_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
) -> dict:
    """Best-of-N over ``prompts`` from base + ``adapter``, scored by ``reward``.

    Returns ``{"samples", "kept", "reward_stats": {"all", "kept"}}`` plus ``output_dir`` and
    ``metrics`` (mode "sft") or ``pairs`` (mode "pairs": ``{"prompt", "chosen", "rejected",
    "chosen_reward", "rejected_reward"}`` with chosen/rejected as one-assistant-message lists —
    ready as DPO rows — and their texts under ``chosen_text`` / ``rejected_text``).
    """
    from tuning.engine.adapters import check_adapter_base, check_adapter_folder
    from tuning.engine.chat import check_messages, with_system_prompt
    from tuning.engine.fsutil import check_output_dir
    from tuning.engine.generation import generate_with
    from tuning.engine.loading import load_policy
    from tuning.engine.reward import check_reward_spec, score

    started = time.perf_counter()
    config = RejectionConfig.from_value(config)
    config.check()
    reward = check_reward_spec(reward)
    if not isinstance(prompts, list) or not prompts:
        raise BadInput("the prompt list is empty: there is nothing to sample")
    prompts = [check_messages(p, f"prompt {i}") for i, p in enumerate(prompts)]
    if config.mode == "sft":
        if output_dir is None:
            raise BadInput("mode 'sft' writes a new adapter: output_dir is required")
        check_output_dir(output_dir)
    if adapter is not None:
        check_adapter_folder(adapter)
        check_adapter_base(adapter, source)

    model, tokenizer = load_policy(source, adapter, cache_dir=cache_dir, device=device, dtype=dtype)
    generated = generate_with(
        model,
        tokenizer,
        prompts,
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        batch_size=config.batch_size,
        system_prompt=config.system_prompt,
        progress=progress,
    )
    del model
    # The reward sees each answer in the conversation it was sampled in, system prompt included:
    # an answer to "be brief" scored as if nobody had asked would be judged on the wrong question.
    items = [
        {"prompt": with_system_prompt(prompt, config.system_prompt), "response": sample["text"]}
        for prompt, samples in zip(prompts, generated, strict=True)
        for sample in samples
    ]
    scores = score(
        source=source, reward=reward, items=items, cache_dir=cache_dir, device=device, dtype=dtype, progress=progress
    )
    samples: list[list[dict]] = []
    kept: list[dict] = []
    pairs: list[dict] = []
    position = 0
    for index, (prompt, group) in enumerate(zip(prompts, generated, strict=True)):
        scored = []
        for sample in group:
            scored.append({**sample, "reward": scores[position]})
            position += 1
        samples.append(scored)
        best, worst = best_and_worst(scored)
        kept.append({"prompt_index": index, "prompt": prompt, "sample_index": best, **scored[best]})
        margin = scored[best]["reward"] - scored[worst]["reward"]
        if config.mode == "pairs" and margin > config.min_margin and scored[best]["text"] != scored[worst]["text"]:
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": scored[best]["text"]}],
                    "rejected": [{"role": "assistant", "content": scored[worst]["text"]}],
                    "chosen_reward": scored[best]["reward"],
                    "rejected_reward": scored[worst]["reward"],
                    "chosen_text": scored[best]["text"],
                    "rejected_text": scored[worst]["text"],
                    "prompt_index": index,
                }
            )
    result: dict[str, Any] = {
        "samples": samples,
        "kept": kept,
        "reward_stats": {
            "all": distribution(scores),
            "kept": distribution([k["reward"] for k in kept]),
        },
    }
    if config.mode == "pairs":
        result["pairs"] = pairs
    else:
        result.update(
            distil(
                source=source,
                adapter=adapter,
                examples=[(k["prompt"], k["text"]) for k in kept],
                output_dir=output_dir,
                config=config,
                reward=reward,
                progress=progress,
                cache_dir=cache_dir,
                device=device,
                dtype=dtype,
            )
        )
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def distil(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    examples: list[tuple[list[dict], str]],
    output_dir: str | os.PathLike,
    config: RejectionConfig,
    reward: dict | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
) -> dict:
    """Supervised fine-tuning on (prompt, response) examples into a new adapter version.

    On top of an existing adapter the training continues that adapter (its copy); on the bare
    base a fresh adapter of shape ``config.lora`` is trained.
    """
    import datasets
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from tuning.engine.adapters import adapter_fingerprint, peft_config_for, write_metadata
    from tuning.engine.chat import with_system_prompt
    from tuning.engine.fsutil import atomic_dir
    from tuning.engine.hf_trainer import ProgressBridge, trainer_precision
    from tuning.engine.loading import load_policy
    from tuning.engine.sources import base_fingerprint, content_hash

    model, tokenizer = load_policy(
        source, adapter, cache_dir=cache_dir, device=device, dtype=dtype, trainable=adapter is not None
    )
    rows = [
        {
            "prompt": with_system_prompt(prompt, config.system_prompt),
            "completion": [{"role": "assistant", "content": text}],
        }
        for prompt, text in examples
    ]
    bridge = ProgressBridge(progress)
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="prefloop-sft-") as scratch:
            args = SFTConfig(
                output_dir=scratch,
                learning_rate=config.learning_rate,
                num_train_epochs=config.epochs,
                max_steps=config.max_steps if config.max_steps is not None else -1,
                per_device_train_batch_size=config.sft_batch_size,
                gradient_accumulation_steps=config.grad_accum,
                max_length=config.max_length,
                seed=config.seed,
                packing=False,
                gradient_checkpointing=False,
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                disable_tqdm=True,
                dataloader_pin_memory=False,
                **trainer_precision(model),
            )
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=datasets.Dataset.from_list(rows),
                processing_class=tokenizer,
                peft_config=None if adapter is not None else peft_config_for(model, config.lora),
                callbacks=[bridge],
            )
            trainer.remove_callback(PrinterCallback)
            trainer.train()
    finally:
        datasets.enable_progress_bars()
    if bridge.diverged:
        raise TrainingDiverged(f"distillation stopped: {bridge.diverged}; lower the learning rate")
    if bridge.stop_requested:
        raise Cancelled("distillation stopped on request")
    trained = trainer.model
    trained.eval()
    metrics = {k: v for k, v in (bridge.history[-1] if bridge.history else {}).items() if k in ("loss", "mean_token_accuracy")}
    data_hash = content_hash(rows)
    with atomic_dir(output_dir) as staging:
        trained.save_pretrained(staging)
        write_metadata(
            staging,
            {
                "kind": "lora",
                "job": "rejection_sft",
                "base_source": str(source),
                "base_fingerprint": base_fingerprint(source),
                "parent_adapter": str(adapter) if adapter is not None else None,
                "parent_adapter_fingerprint": adapter_fingerprint(adapter) if adapter is not None else None,
                "lora": config.lora.to_dict() if adapter is None else None,
                "data_hash": data_hash,
                "data": {"examples": len(rows)},
                "reward": reward,
                "hyperparameters": asdict(config),
                "final_metrics": metrics,
            },
        )
    return {"output_dir": str(output_dir), "metrics": metrics, "history": bridge.history, "data_hash": data_hash}
