"""Rewards: DPO's implicit reward of an adapter against its parent, and trained reward models.

* Implicit reward of a response y to a prompt x: ``beta * (log pi(y|x) - log pi_parent(y|x))``,
  where pi is base + adapter and pi_parent is base + the parent adapter (or the bare base).
* A reward model: LoRA (task SEQ_CLS) on ``AutoModelForSequenceClassification(num_labels=1)`` of
  the base, trained with TRL's ``RewardTrainer`` on preference pairs; it scores a whole
  conversation (prompt + response) with one number.

``score`` takes either kind through one plain dict, so rejection sampling can use both.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tuning.engine.adapters import LoraSpec
from tuning.engine.errors import BadInput, Cancelled, TrainingDiverged
from tuning.engine.progress import ProgressCallback

REWARD_KINDS = ("implicit", "model")


def load_policy_and_parent(
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    parent_adapter: str | os.PathLike | None,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
):
    """One base with both adapters attached -> (model, tokenizer, policy name, parent name).

    A name is None where that side is the bare base (see ``adapters.active_adapter``).
    """
    from tuning.engine.adapters import attach_adapter
    from tuning.engine.loading import load_base

    model, tokenizer = load_base(source, cache_dir=cache_dir, device=device, dtype=dtype)
    policy_name = parent_name = None
    if adapter is not None:
        model = attach_adapter(model, adapter, source=source, adapter_name="policy")
        policy_name = "policy"
    if parent_adapter is not None:
        model = attach_adapter(model, parent_adapter, source=source, adapter_name="parent")
        parent_name = "parent"
    model.eval()
    return model, tokenizer, policy_name, parent_name


def _pair_logps_under(model, tokenizer, pairs, name, *, batch_size, reporter, offset):
    from tuning.engine.adapters import active_adapter
    from tuning.engine.logprobs import pair_logps, supports_shared_prompt

    def on_batch(done: int, total: int) -> None:
        reporter.send(offset + done)

    with active_adapter(model, name):
        return pair_logps(
            model,
            pairs,
            pad_token_id=tokenizer.pad_token_id,
            batch_size=batch_size,
            share_prompt=supports_shared_prompt(model),
            on_batch=on_batch,
        )


def implicit_rewards(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None,
    parent_adapter: str | os.PathLike | None,
    rows: list[dict],
    beta: float,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """DPO's implicit reward of each row's chosen and rejected response -> one dict per row.

    ``{"chosen", "rejected", "margin"}``, margin = chosen - rejected (> 0 means the adapter,
    relative to its parent, prefers the chosen response). With ``max_length`` set, longer
    responses are cut to fit (rows whose prompt alone is too long are refused).
    """
    from tuning.engine.chat import check_rows_present

    if not beta > 0:
        raise BadInput(f"beta must be > 0, got {beta}")
    check_rows_present(rows, "evaluation set")
    model, tokenizer, policy, parent = load_policy_and_parent(
        source, adapter, parent_adapter, cache_dir=cache_dir, device=device, dtype=dtype
    )
    return implicit_rewards_with(
        model, tokenizer, policy, parent, rows, beta=beta, batch_size=batch_size, max_length=max_length, progress=progress
    )


def implicit_rewards_with(
    model,
    tokenizer,
    policy: str | None,
    parent: str | None,
    rows: list[dict],
    *,
    beta: float,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: ProgressCallback | None = None,
    phase: str = "score",
) -> list[dict]:
    """``implicit_rewards`` on a model already loaded with both adapters (see ``load_policy_and_parent``).

    Each dict also carries ``chosen_tokens`` / ``rejected_tokens``: the responses' lengths in
    tokens (after any cut), so a caller can tell which answer was the longer one.
    """
    import math

    from tuning.engine.chat import check_rows_present, encode_pairs
    from tuning.engine.progress import Reporter

    if not beta > 0:
        raise BadInput(f"beta must be > 0, got {beta}")
    check_rows_present(rows, "evaluation set")
    pairs, report = encode_pairs(
        tokenizer, rows, max_length=max_length, truncation="truncate", what="evaluation set"
    )
    if report.dropped:
        raise BadInput(
            f"{len(report.dropped)} row(s) have a prompt longer than max_length={max_length} tokens "
            f"(rows {report.dropped[:10]}); raise max_length"
        )
    n_batches = math.ceil(len(pairs) / batch_size)
    reporter = Reporter(progress, phase=phase, total=2 * n_batches)
    pc, pr = _pair_logps_under(model, tokenizer, pairs, policy, batch_size=batch_size, reporter=reporter, offset=0)
    rc, rr = _pair_logps_under(
        model, tokenizer, pairs, parent, batch_size=batch_size, reporter=reporter, offset=n_batches
    )
    chosen = (beta * (pc - rc)).tolist()
    rejected = (beta * (pr - rr)).tolist()
    return [
        {
            "chosen": c,
            "rejected": r,
            "margin": c - r,
            "chosen_tokens": len(pair.chosen),
            "rejected_tokens": len(pair.rejected),
        }
        for c, r, pair in zip(chosen, rejected, pairs, strict=True)
    ]


# -- scoring (prompt, response) items ----------------------------------------------------------


def _check_items(items: Any) -> list[tuple[list[dict], list[dict]]]:
    from tuning.engine.chat import check_messages, check_response

    if not isinstance(items, list):
        raise BadInput(f"items must be a list of {{'prompt', 'response'}}, got {type(items).__name__}")
    checked = []
    for number, item in enumerate(items):
        if not isinstance(item, dict) or "prompt" not in item or "response" not in item:
            raise BadInput(f"item {number}: expected keys 'prompt' and 'response'")
        checked.append(
            (
                check_messages(item["prompt"], f"item {number}, prompt"),
                check_response(item["response"], f"item {number}, response"),
            )
        )
    return checked


def check_reward_spec(reward: Any) -> dict:
    """The reward dict, or BadInput naming what is missing."""
    if not isinstance(reward, dict) or reward.get("kind") not in REWARD_KINDS:
        raise BadInput(
            "reward must be {'kind': 'implicit', 'adapter', 'parent', 'beta'} or {'kind': 'model', 'path'}, "
            f"got {reward!r:.120}"
        )
    if reward["kind"] == "implicit":
        if "adapter" not in reward:
            raise BadInput("an implicit reward needs 'adapter' (the adapter whose preference scores)")
        beta = reward.get("beta", 0.1)
        if not isinstance(beta, int | float) or not beta > 0:
            raise BadInput(f"an implicit reward needs beta > 0, got {beta!r}")
    elif not reward.get("path"):
        raise BadInput("a reward model reward needs 'path' (the reward model folder)")
    return reward


def score(
    *,
    source: str | os.PathLike,
    reward: dict,
    items: list[dict],
    batch_size: int = 8,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    progress: ProgressCallback | None = None,
) -> list[float]:
    """Score each ``{"prompt", "response"}`` item with an implicit reward or a reward model.

    ``reward`` is ``{"kind": "implicit", "adapter": ..., "parent": ..., "beta": ...}`` or
    ``{"kind": "model", "path": ...}``. Higher is better; scores of one reward are comparable with
    each other, not across rewards.
    """
    reward = check_reward_spec(reward)
    checked = _check_items(items)
    if not checked:
        return []
    if reward["kind"] == "implicit":
        return _score_implicit(
            source, reward, checked, batch_size=batch_size, cache_dir=cache_dir, device=device, dtype=dtype, progress=progress
        )
    return _score_with_model(
        source, reward["path"], checked, batch_size=batch_size, cache_dir=cache_dir, device=device, dtype=dtype, progress=progress
    )


def _score_implicit(source, reward, checked, *, batch_size, cache_dir, device, dtype, progress) -> list[float]:
    import torch

    from tuning.engine.adapters import active_adapter
    from tuning.engine.chat import split_completion
    from tuning.engine.loading import input_device
    from tuning.engine.logprobs import length_grouped, pack, sequence_logps, supports_shared_prompt
    from tuning.engine.progress import Reporter
    from tuning.engine.sources import canonical_json

    model, tokenizer, policy, parent = load_policy_and_parent(
        source, reward["adapter"], reward.get("parent"), cache_dir=cache_dir, device=device, dtype=dtype
    )
    # Responses to the same prompt share one packed row: the prompt runs once for all of them.
    groups: dict[str, tuple[list[int], list[tuple[int, list[int]]]]] = {}
    for number, (prompt, response) in enumerate(checked):
        prompt_ids, response_ids = split_completion(tokenizer, prompt, response)
        key = canonical_json(prompt_ids)
        groups.setdefault(key, (prompt_ids, []))[1].append((number, response_ids))
    group_list = list(groups.values())
    sizes = [len(p) + sum(len(r) for _, r in rs) for p, rs in group_list]
    batches = length_grouped(sizes, batch_size)
    share = supports_shared_prompt(model)
    reporter = Reporter(progress, phase="score", total=2 * len(batches))
    scores = torch.zeros(len(checked), dtype=torch.float64)
    device_ = input_device(model)
    step = 0
    for sign, name in ((1.0, policy), (-1.0, parent)):
        with torch.no_grad(), active_adapter(model, name):
            for indices in batches:
                chosen_groups = [group_list[i] for i in indices]
                packed = pack(
                    [(p, [r for _, r in rs]) for p, rs in chosen_groups],
                    pad_token_id=tokenizer.pad_token_id,
                    share_prompt=share,
                ).to(device_)
                logps = sequence_logps(model, packed).cpu().double()
                order = [number for _, rs in chosen_groups for number, _ in rs]
                scores[order] += sign * logps
                step += 1
                reporter.send(step)
    return (float(reward.get("beta", 0.1)) * scores).tolist()


def load_reward_model(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
):
    """Base as a one-score sequence classifier + the reward model's LoRA and score head."""
    from peft import PeftModel

    from tuning.engine.adapters import check_adapter_base, check_adapter_folder
    from tuning.engine.loading import load_base

    folder = check_adapter_folder(path)
    metadata = check_adapter_base(folder, source)
    if metadata and metadata.get("kind") != "reward_model":
        raise BadInput(f"{folder} is a {metadata.get('kind', 'unknown')} adapter, not a reward model")
    model, tokenizer = load_base(source, cache_dir=cache_dir, device=device, dtype=dtype, task="seq-cls")
    try:
        model = PeftModel.from_pretrained(model, str(folder))
    except (RuntimeError, ValueError, KeyError) as error:
        raise BadInput(f"reward model {folder} does not fit base model {source}: {error}") from error
    model.eval()
    return model, tokenizer


def score_sequences(model, tokenizer, sequences: list[list[int]], *, batch_size: int = 8, reporter=None) -> list[float]:
    """A sequence classifier's score of each token-id sequence (right-padded batches)."""
    import torch

    from tuning.engine.loading import input_device
    from tuning.engine.logprobs import length_grouped

    device = input_device(model)
    scores = [0.0] * len(sequences)
    batches = length_grouped([len(s) for s in sequences], batch_size)
    for number, indices in enumerate(batches, start=1):
        width = max(len(sequences[i]) for i in indices)
        ids = torch.full((len(indices), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
            mask[row, : len(sequences[i])] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for row, i in enumerate(indices):
            scores[i] = float(logits[row, 0])
        if reporter is not None:
            reporter.send(number)
    return scores


def _score_with_model(source, path, checked, *, batch_size, cache_dir, device, dtype, progress) -> list[float]:
    import math

    from tuning.engine.chat import template_ids
    from tuning.engine.progress import Reporter

    model, tokenizer = load_reward_model(source, path, cache_dir=cache_dir, device=device, dtype=dtype)
    sequences = [template_ids(tokenizer, p + r, add_generation_prompt=False) for p, r in checked]
    reporter = Reporter(progress, phase="score", total=math.ceil(len(sequences) / batch_size))
    return score_sequences(model, tokenizer, sequences, batch_size=batch_size, reporter=reporter)


# -- training a reward model -------------------------------------------------------------------


@dataclass
class RewardConfig:
    """A reward model run's settings (TRL RewardTrainer + LoRA on a sequence classifier)."""

    learning_rate: float = 1e-4
    epochs: int = 1
    # Optimiser steps to run; None = as many as `epochs` needs.
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    # Longest conversation (prompt + response), in tokens.
    max_length: int = 512
    seed: int = 0
    # "truncate" cuts responses to fit max_length, "drop" leaves such rows out, "error" refuses.
    truncation: str = "truncate"
    # Share of pairs held out to measure the trained model's accuracy (0 = none).
    heldout_fraction: float = 0.0
    lora: LoraSpec = field(default_factory=LoraSpec)
    # Pulls scores towards 0 so different reward models' scales stay comparable (None = off).
    center_rewards_coefficient: float | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        # A dict (as decoded from JSON) is as good as a LoraSpec.
        if not isinstance(self.lora, LoraSpec):
            self.lora = LoraSpec.from_dict(self.lora)

    @classmethod
    def from_value(cls, value: RewardConfig | dict | None) -> RewardConfig:
        if value is None:
            return cls()
        if isinstance(value, RewardConfig):
            return value
        if not isinstance(value, dict):
            raise BadInput(f"reward config must be a RewardConfig or a dict, got {type(value).__name__}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            raise BadInput(f"unknown reward model settings: {', '.join(sorted(unknown))}")
        return cls(**value)

    def check(self) -> None:
        checks = [
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}"),
            (0 <= self.heldout_fraction < 1, f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)


def train_reward_model(
    *,
    source: str | os.PathLike,
    rows: list[dict],
    output_dir: str | os.PathLike,
    config: RewardConfig | dict | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
) -> dict:
    """Train a reward model on preference ``rows``; write it (LoRA + score head) to ``output_dir``.

    Returns ``{"output_dir", "metrics", "history", "data_hash", "steps"}``; ``metrics`` holds the
    last step's training accuracy and, with a held-out split, ``eval_accuracy``.
    """
    import datasets
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import RewardConfig as TRLRewardConfig
    from trl import RewardTrainer

    from tuning.engine.adapters import peft_config_for, write_metadata
    from tuning.engine.chat import check_rows_present, encode_pairs
    from tuning.engine.dpo import split_heldout
    from tuning.engine.fsutil import atomic_dir, check_output_dir
    from tuning.engine.hf_trainer import ProgressBridge, trainer_precision
    from tuning.engine.loading import load_base
    from tuning.engine.progress import Reporter
    from tuning.engine.sources import base_fingerprint, content_hash

    started = time.perf_counter()
    config = RewardConfig.from_value(config)
    config.check()
    check_rows_present(rows)
    check_output_dir(output_dir)
    fingerprint = base_fingerprint(source)
    data_hash = content_hash(rows)
    model, tokenizer = load_base(source, cache_dir=cache_dir, device=device, dtype=dtype, task="seq-cls")
    pairs, report = encode_pairs(tokenizer, rows, max_length=config.max_length, truncation=config.truncation)
    train_idx, heldout_idx = split_heldout(len(pairs), config.heldout_fraction, config.seed)
    prepare = Reporter(progress, phase="prepare", total=1)
    if report.truncated or report.dropped:
        prepare.message(
            f"{len(report.truncated)} row(s) truncated and {len(report.dropped)} dropped "
            f"(longer than max_length={config.max_length} tokens, truncation={config.truncation!r})"
        )
    dataset = Dataset.from_list(
        [
            {"chosen_ids": pairs[i].prompt + pairs[i].chosen, "rejected_ids": pairs[i].prompt + pairs[i].rejected}
            for i in train_idx
        ]
    )
    bridge = ProgressBridge(progress)
    # TRL filters the (already fitted) rows with a datasets progress bar; keep job logs quiet.
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory(prefix="prefloop-reward-") as scratch:
            args = TRLRewardConfig(
                output_dir=scratch,
                learning_rate=config.learning_rate,
                num_train_epochs=config.epochs,
                max_steps=config.max_steps if config.max_steps is not None else -1,
                per_device_train_batch_size=config.batch_size,
                gradient_accumulation_steps=config.grad_accum,
                max_length=config.max_length,
                seed=config.seed,
                center_rewards_coefficient=config.center_rewards_coefficient,
                gradient_checkpointing=config.gradient_checkpointing,
                logging_steps=1,
                save_strategy="no",
                report_to=[],
                disable_tqdm=True,
                remove_unused_columns=False,
                dataloader_pin_memory=False,
                **trainer_precision(model),
            )
            trainer = RewardTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                peft_config=peft_config_for(model, config.lora, task_type="SEQ_CLS"),
                callbacks=[bridge],
            )
            trainer.remove_callback(PrinterCallback)
            trainer.train()
    finally:
        datasets.enable_progress_bars()
    if bridge.diverged:
        raise TrainingDiverged(f"reward model training stopped: {bridge.diverged}; lower the learning rate")
    if bridge.stop_requested:
        raise Cancelled("reward model training stopped on request")

    trained = trainer.model
    trained.eval()
    metrics = {k: v for k, v in (bridge.history[-1] if bridge.history else {}).items() if k in ("loss", "accuracy", "margin")}
    if heldout_idx:
        scores = _pairs_scores(trained, tokenizer, [pairs[i] for i in heldout_idx], config.batch_size)
        margins = [c - r for c, r in scores]
        metrics["eval_accuracy"] = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins) / len(margins)
        metrics["eval_margin"] = sum(margins) / len(margins)
    with atomic_dir(output_dir) as staging:
        trained.save_pretrained(staging)
        write_metadata(
            staging,
            {
                "kind": "reward_model",
                "job": "reward_model",
                "base_source": str(source),
                "base_fingerprint": fingerprint,
                "parent_adapter": None,
                "lora": config.lora.to_dict(),
                "data_hash": data_hash,
                "data": report.as_dict() | {"train_pairs": len(train_idx), "heldout_pairs": len(heldout_idx)},
                "hyperparameters": asdict(config),
                "final_metrics": metrics,
            },
        )
    return {
        "output_dir": str(output_dir),
        "metrics": metrics,
        "history": bridge.history,
        "data_hash": data_hash,
        "steps": len(bridge.history),
        "data": report.as_dict() | {"train_pairs": len(train_idx), "heldout_pairs": len(heldout_idx)},
        "seconds": round(time.perf_counter() - started, 3),
    }


def _pairs_scores(model, tokenizer, pairs, batch_size) -> list[tuple[float, float]]:
    sequences = []
    for pair in pairs:
        sequences.append(pair.prompt + pair.chosen)
        sequences.append(pair.prompt + pair.rejected)
    scores = score_sequences(model, tokenizer, sequences, batch_size=batch_size)
    return list(zip(scores[0::2], scores[1::2], strict=True))
