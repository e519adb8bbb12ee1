"""DPO training of a LoRA adapter: on top of an existing adapter, or a fresh one on the base.

The reference policy is the starting point: base + the same adapter when one is given (not the
bare base), the base otherwise. Because it never changes, its log-probabilities are computed once,
before the first step, on exactly the batches training will use; the first step's rewards are
therefore exactly zero. How the work is done (not how much of it) is what makes this faster than
a plain TRL ``DPOTrainer`` run with the same settings (SimPO, which has no reference, skips that
pass altogether):

* each pair's prompt goes through the model once for both responses (see ``logprobs``);
* pairs are batched with others of similar length, so little of a batch is padding;
* the reference forward pass happens once per pair, not once per pair per epoch.

Batches are fixed for the whole run and only their order changes per epoch (seeded), and dropout
is off, so a run resumed from a checkpoint repeats the uninterrupted run exactly.

Launched as several processes (``accelerate launch --num_processes N -m tuning.engine dpo``), the
ranks split each step's micro-batches, sum their gradients and gather their metrics (see
``distributed``), so the steps and the numbers are those of one process; only rank 0 reports
progress and writes checkpoints and the adapter.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tuning.engine.adapters import LoraSpec
from tuning.engine.distributed import SINGLE, Ranks
from tuning.engine.errors import BadInput, Cancelled, TrainingDiverged
from tuning.engine.progress import ProgressCallback

logger = logging.getLogger(__name__)

SCHEDULERS = ("linear", "constant", "cosine")
CHECKPOINT_STATE = "trainer_state.json"
# Epochs scaled to the set (epochs=None): at least this many optimiser steps, at most this
# many passes; warm-up (warmup_steps=None) takes this share of the steps. From measurement,
# see README "Defaults that learn".
AUTO_MIN_STEPS = 48
AUTO_MAX_EPOCHS = 8
AUTO_WARMUP = 0.1
# A last epoch whose mean reward margin (beta * log-ratio, chosen minus rejected) stays under
# this learned nothing, whatever its accuracy: real runs here reach 0.02 within ten steps.
MIN_LEARNED_MARGIN = 1e-3
# Checkpoints kept in checkpoint_dir; older ones are removed as new ones appear.
CHECKPOINTS_KEPT = 2


@dataclass
class DPOConfig:
    """One DPO run's settings; saved whole in the output's prefloop.json."""

    # Strength of the pull towards the reference (higher = stay closer). IPO's tau. SimPO's
    # reward scale (its paper uses 2.0-2.5).
    beta: float = 0.1
    # One of losses.LOSS_TYPES: sigmoid (DPO), ipo, hinge, robust, sigmoid_norm, simpo, rdpo, ...
    loss_type: str = "sigmoid"
    # Peak learning rate of AdamW.
    learning_rate: float = 5e-5
    # Passes over the training pairs (ignored when max_steps is set). None: scaled to the set's
    # size, so that a small set still gets AUTO_MIN_STEPS steps (see planned_epochs).
    epochs: int | None = None
    # Optimiser steps to run; None = as many as `epochs` needs.
    max_steps: int | None = None
    # Pairs per forward pass.
    batch_size: int = 4
    # Forward passes per optimiser step (effective batch = batch_size * grad_accum).
    grad_accum: int = 1
    # Longest prompt + response, in tokens.
    max_length: int = 512
    seed: int = 0
    # Share of pairs held out for evaluation at the end (0 = none).
    heldout_fraction: float = 0.0
    # Write a checkpoint every this many optimiser steps (only when a checkpoint_dir is given).
    checkpoint_every: int | None = None
    # What to do with a row longer than max_length: "truncate" its responses, "drop" it, or
    # "error" out.
    truncation: str = "truncate"
    # Shape of a fresh adapter (ignored when training on top of an existing one).
    lora: LoraSpec = field(default_factory=LoraSpec)
    # Robust DPO's label-flip probability; EXO's epsilon.
    label_smoothing: float = 0.0
    # SimPO's target margin gamma between the chosen and rejected rewards (beta * average
    # log-prob, nats per token); TRL's default. The SimPO paper sets gamma / beta to about 0.5.
    simpo_gamma: float = 0.5
    # R-DPO's alpha, per token of length difference (chosen minus rejected) inside the sigmoid:
    # > 0 keeps the adapter from learning "longer wins" (the paper's use), < 0 "shorter wins".
    length_alpha: float = 0.01
    # Steps of linear warm-up from 0 to learning_rate. None: AUTO_WARMUP of the run's steps.
    warmup_steps: int | None = None
    # Learning-rate schedule after warm-up: linear decay to 0, constant, or cosine.
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    # Gradients are clipped to this global norm (0 = no clipping).
    max_grad_norm: float = 1.0
    # Recompute activations in the backward pass: less memory, ~30% more compute.
    gradient_checkpointing: bool = False
    # Run each pair's prompt once for both responses (needs a model that takes a 4-D mask).
    share_prompt: bool = True
    # Batch pairs of similar length together (less padding) instead of at random.
    group_by_length: bool = True

    def __post_init__(self) -> None:
        # A dict (as decoded from JSON) is as good as a LoraSpec.
        if not isinstance(self.lora, LoraSpec):
            self.lora = LoraSpec.from_dict(self.lora)

    @classmethod
    def from_value(cls, value: DPOConfig | dict | None) -> DPOConfig:
        if value is None:
            return cls()
        if isinstance(value, DPOConfig):
            return value
        if not isinstance(value, dict):
            raise BadInput(f"DPO config must be a DPOConfig or a dict, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise BadInput(f"unknown DPO settings: {', '.join(sorted(unknown))}")
        return cls(**value)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        from tuning.engine.chat import TRUNCATION_MODES
        from tuning.engine.losses import check_loss_settings

        problem = check_loss_settings(self.loss_type, self.beta, self.label_smoothing)
        if problem:
            raise BadInput(problem)
        checks = [
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}"),
            (0 <= self.heldout_fraction < 1, f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}"),
            (
                self.checkpoint_every is None or self.checkpoint_every >= 1,
                f"checkpoint_every must be >= 1, got {self.checkpoint_every}",
            ),
            (self.truncation in TRUNCATION_MODES, f"truncation must be one of {TRUNCATION_MODES}, got {self.truncation!r}"),
            (self.lr_scheduler in SCHEDULERS, f"lr_scheduler must be one of {SCHEDULERS}, got {self.lr_scheduler!r}"),
            (self.warmup_steps is None or self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}"),
            (self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got {self.max_grad_norm}"),
            (math.isfinite(self.simpo_gamma), f"simpo_gamma must be a finite number, got {self.simpo_gamma}"),
            (math.isfinite(self.length_alpha), f"length_alpha must be a finite number, got {self.length_alpha}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)

    def math_settings(self) -> dict:
        """Everything that changes the numbers; a resumed run must agree on all of it."""
        data = self.to_dict()
        data.pop("checkpoint_every")
        return data

    @property
    def needs_reference(self) -> bool:
        from tuning.engine.losses import REFERENCE_FREE

        return self.loss_type not in REFERENCE_FREE


def planned_epochs(config: DPOConfig, n_batches: int) -> int:
    """The run's passes over its pairs: the config's, or enough for AUTO_MIN_STEPS steps.

    A set of 18 pairs at batch 4 makes 5 steps an epoch, too few for LoRA to move; scaled, it
    gets AUTO_MAX_EPOCHS passes (40 steps), the demo's 111 pairs 2 (56 steps), 1,000 pairs one.
    """
    if config.epochs is not None:
        return config.epochs
    per_epoch = max(1, math.ceil(n_batches / config.grad_accum))
    return max(1, min(AUTO_MAX_EPOCHS, math.ceil(AUTO_MIN_STEPS / per_epoch)))


def split_heldout(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices), a seeded random split; at least one of each if asked."""
    indices = list(range(n))
    if fraction <= 0:
        return indices, []
    random.Random(seed).shuffle(indices)
    n_heldout = min(max(1, round(n * fraction)), n - 1)
    if n_heldout < 1:
        raise BadInput(f"a held-out split needs at least 2 pairs, the set has {n}")
    return sorted(indices[n_heldout:]), sorted(indices[:n_heldout])


def fixed_batches(pairs: list, batch_size: int, *, group_by_length: bool, seed: int) -> list[list[int]]:
    """The run's batches (lists of indices into ``pairs``); their order is shuffled per epoch."""
    from tuning.engine.logprobs import length_grouped

    if group_by_length:
        return length_grouped([p.packed_length for p in pairs], batch_size)
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n_batches))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


def _lr_lambda(kind: str, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "constant":
            return 1.0
        if kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _disable_dropout(model: Any) -> None:
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


class _Run:
    """State of one training run; split from train_dpo to keep each part readable."""

    def __init__(
        self, *, model, tokenizer, config: DPOConfig, pairs, heldout, device, share_prompt: bool, ranks: Ranks = SINGLE
    ):
        self.model = model
        self.ranks = ranks
        self.tokenizer = tokenizer
        self.config = config
        self.pairs = pairs
        self.heldout = heldout
        self.device = device
        self.share_prompt = share_prompt
        self.batches = fixed_batches(
            pairs, config.batch_size, group_by_length=config.group_by_length, seed=config.seed
        )
        self.n_batches = len(self.batches)
        if config.max_steps is not None:
            self.total_steps = config.max_steps
            self.total_micro = config.max_steps * config.grad_accum
        else:
            self.total_micro = planned_epochs(config, self.n_batches) * self.n_batches
            self.total_steps = math.ceil(self.total_micro / config.grad_accum)
        self.warmup_steps = (
            config.warmup_steps if config.warmup_steps is not None else math.ceil(AUTO_WARMUP * self.total_steps)
        )
        self.history: list[dict] = []
        self.step = 0
        self.ref: dict[str, Any] = {}
        # batch id -> (chosen rewards, rejected rewards) of its pairs, from the micro-batches of
        # the last epoch (the last n_batches of the run): the final training metrics.
        self.last_epoch: dict[int, tuple[list[float], list[float]]] = {}
        self.last_epoch_from = max(0, self.total_micro - self.n_batches)

    # -- batches ----------------------------------------------------------------------------
    def heldout_batches(self) -> list[list[int]]:
        from tuning.engine.logprobs import length_grouped

        return length_grouped([p.packed_length for p in self.heldout], self.config.batch_size)

    def micro_batch(self, number: int) -> tuple[int, list[int]]:
        """(batch id, pair indices) of the run's ``number``-th forward pass."""
        epoch, position = divmod(number, self.n_batches)
        batch_id = epoch_order(self.n_batches, self.config.seed, epoch)[position]
        return batch_id, self.batches[batch_id]

    def packed(self, pairs, indices):
        from tuning.engine.logprobs import pack

        groups = [(pairs[i].prompt, [pairs[i].chosen, pairs[i].rejected]) for i in indices]
        return pack(groups, pad_token_id=self.tokenizer.pad_token_id, share_prompt=self.share_prompt).to(
            self.device
        )

    # -- reference --------------------------------------------------------------------------
    def compute_reference(self, *, fresh_adapter: bool, reporter) -> None:
        """Reference log-probs of every pair, on the very batches training will use.

        With several ranks each computes the batches dealt to it, one round of N batches at a
        time, and the sums over ranks (zeros elsewhere) give every rank the whole table.
        """
        import torch

        from tuning.engine.adapters import active_adapter
        from tuning.engine.logprobs import sequence_logps

        self.model.eval()
        # A fresh adapter starts as a no-op (B = 0), so the reference is the base: skip the
        # adapter's matmuls. An existing adapter IS the reference: keep it on.
        adapter = None if fresh_adapter else "default"
        work = [("train", self.pairs, self.batches)]
        if self.heldout:
            work.append(("heldout", self.heldout, self.heldout_batches()))
        total = sum(len(b) for _, _, b in work)
        world, rank = self.ranks.world, self.ranks.rank
        done = 0
        with torch.no_grad(), active_adapter(self.model, adapter):
            for name, pairs, batches in work:
                chosen = torch.zeros(len(pairs))
                rejected = torch.zeros(len(pairs))
                for first in range(0, len(batches), world):
                    if first + rank < len(batches):
                        indices = batches[first + rank]
                        logps = sequence_logps(self.model, self.packed(pairs, indices)).cpu()
                        chosen[indices] = logps[0::2]
                        rejected[indices] = logps[1::2]
                    done += min(world, len(batches) - first)
                    reporter.send(done, message=f"reference log-probs {done}/{total}")
                self.ref[name] = (self.ranks.sum_(chosen), self.ranks.sum_(rejected))

    # -- one forward pass -------------------------------------------------------------------
    def losses_for(self, pairs, indices, ref_name):
        import torch

        from tuning.engine.logprobs import sequence_logps
        from tuning.engine.losses import dpo_losses

        batch = self.packed(pairs, indices)
        logps = sequence_logps(self.model, batch)
        ref_chosen = ref_rejected = None
        if self.config.needs_reference:
            index = torch.tensor(indices)
            all_chosen, all_rejected = self.ref[ref_name]
            ref_chosen = all_chosen[index].to(logps.device)
            ref_rejected = all_rejected[index].to(logps.device)
        lengths = batch.lengths.to(logps.device)
        result = dpo_losses(
            policy_chosen=logps[0::2],
            policy_rejected=logps[1::2],
            ref_chosen=ref_chosen,
            ref_rejected=ref_rejected,
            chosen_lengths=lengths[0::2],
            rejected_lengths=lengths[1::2],
            beta=self.config.beta,
            loss_type=self.config.loss_type,
            label_smoothing=self.config.label_smoothing,
            simpo_gamma=self.config.simpo_gamma,
            length_alpha=self.config.length_alpha,
        )
        weights = torch.tensor([pairs[i].weight for i in indices], dtype=result.losses.dtype, device=logps.device)
        return result, weights, batch.real_tokens


def _pair_metrics(chosen, rejected) -> dict:
    # In float64, so that e.g. 9 right out of 10 reads as 0.9, not 0.8999999761.
    chosen, rejected = chosen.double(), rejected.double()
    margins = chosen - rejected
    # A tie (e.g. every pair of the first step, where policy = reference) counts half right, as
    # in evaluation.preference_accuracy: a policy with no preference scores 0.5, chance.
    right = (margins > 0).double() + 0.5 * (margins == 0).double()
    return {
        "rewards/chosen": float(chosen.mean()),
        "rewards/rejected": float(rejected.mean()),
        "rewards/margins": float(margins.mean()),
        "rewards/accuracies": float(right.mean()),
    }


# z of a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (successes may be fractional: ties count half)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _last_epoch_metrics(run: _Run) -> dict:
    """Accuracy and margin over every pair of the last epoch, as each was scored when trained on."""
    import torch

    if not run.last_epoch:
        return {}
    chosen = torch.tensor([v for c, _ in run.last_epoch.values() for v in c], dtype=torch.float64)
    rejected = torch.tensor([v for _, r in run.last_epoch.values() for v in r], dtype=torch.float64)
    metrics = _pair_metrics(chosen, rejected)
    n = len(chosen)
    low, high = wilson_interval(metrics["rewards/accuracies"] * n, n)
    return {
        "last_epoch/accuracy": metrics["rewards/accuracies"],
        "last_epoch/accuracy_low": low,
        "last_epoch/accuracy_high": high,
        "last_epoch/margin": metrics["rewards/margins"],
        "last_epoch/chosen": metrics["rewards/chosen"],
        "last_epoch/rejected": metrics["rewards/rejected"],
        "last_epoch/pairs": n,
    }


def learned_nothing_warning(metrics: dict) -> str | None:
    """A plain sentence when the last epoch's training accuracy is no better than a coin, else None.

    "No better" means the Wilson 95% interval of the accuracy reaches down to 0.5. Training
    accuracy is measured on the pairs being learned, so an adapter that cannot even tell those
    apart has learned nothing that held-out pairs or reviewers could show.
    """
    accuracy = metrics.get("last_epoch/accuracy")
    if accuracy is None:
        return None
    margin = metrics["last_epoch/margin"]
    if metrics["last_epoch/accuracy_low"] > 0.5:
        if margin >= MIN_LEARNED_MARGIN:
            return None
        # Every pair ranked right by a hair: a rate so low that the weights barely moved (seen
        # with 1e-9 over many epochs) still gets the signs right, and nothing a reviewer sees.
        return (
            f"the mean reward margin stayed near zero ({margin:.3g}, under {MIN_LEARNED_MARGIN:g}) although "
            f"training accuracy was {accuracy:.2f}: the adapter barely moved; try a higher learning rate"
        )
    low, high, n = metrics["last_epoch/accuracy_low"], metrics["last_epoch/accuracy_high"], metrics["last_epoch/pairs"]
    where = "at" if high >= 0.5 else "below"
    return (
        f"training accuracy stayed {where} chance ({accuracy:.2f}, 95% {low:.2f}–{high:.2f}, {n} pairs; "
        f"mean reward margin {metrics['last_epoch/margin']:.3g}): the adapter learned nothing measurable; "
        "try more pairs, more epochs or a higher learning rate"
    )


def train_dpo(
    *,
    source: str | os.PathLike,
    adapter: str | os.PathLike | None = None,
    rows: list[dict],
    output_dir: str | os.PathLike,
    config: DPOConfig | dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    resume_from: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
) -> dict:
    """Train a LoRA adapter with DPO on preference ``rows``; write it to ``output_dir``.

    Returns ``{"output_dir", "metrics", "history", "data_hash", "steps", ...}``. Raises BadInput,
    TrainingDiverged (NaN/inf loss) or Cancelled; in every failure ``output_dir`` is not created.

    ``device="auto"`` spreads the model over all of this host's cards (CPU where there are none).
    Under a launcher that started several processes, each takes its own card and a share of every
    step; all of them return the result, rank 0 alone calls ``progress`` and writes files.
    """
    import torch

    from tuning.engine.adapters import (
        attach_adapter,
        attach_lora,
        check_adapter_base,
        check_adapter_folder,
    )
    from tuning.engine.chat import check_rows_present, encode_pairs
    from tuning.engine.distributed import join
    from tuning.engine.fsutil import check_output_dir
    from tuning.engine.loading import input_device, load_base
    from tuning.engine.logprobs import supports_shared_prompt
    from tuning.engine.progress import Reporter
    from tuning.engine.sources import base_fingerprint, content_hash

    started = time.perf_counter()
    config = DPOConfig.from_value(config)
    config.check()
    check_rows_present(rows)
    check_output_dir(output_dir)
    parent_meta: dict = {}
    if adapter is not None:
        check_adapter_folder(adapter)
        parent_meta = check_adapter_base(adapter, source)
    fingerprint = base_fingerprint(source)
    data_hash = content_hash(rows)

    resume_state = None
    if resume_from is not None:
        resume_state = _read_checkpoint(resume_from)
        # A checkpoint written before a setting existed ran with that setting's default.
        resume_state["config"] = DPOConfig().math_settings() | resume_state["config"]
        expected = {
            "config": config.math_settings(),
            "data_hash": data_hash,
            "base_fingerprint": fingerprint,
            "parent_adapter": str(adapter) if adapter is not None else None,
        }
        for key, value in expected.items():
            if _jsonable(resume_state[key]) != _jsonable(value):
                raise BadInput(
                    f"checkpoint {resume_from} belongs to another run: its {key} differs from this one's"
                )

    ranks = join(device)
    progress = ranks.relay(progress)
    model, tokenizer = load_base(source, cache_dir=cache_dir, device=ranks.device or device, dtype=dtype)
    device_name = str(input_device(model))
    pairs, report = encode_pairs(
        tokenizer, rows, max_length=config.max_length, truncation=config.truncation
    )
    train_idx, heldout_idx = split_heldout(len(pairs), config.heldout_fraction, config.seed)
    train_pairs = [pairs[i] for i in train_idx]
    heldout_pairs = [pairs[i] for i in heldout_idx]

    fresh = adapter is None
    if fresh:
        model = attach_lora(model, config.lora, seed=config.seed)
    else:
        model = attach_adapter(model, adapter, source=source, trainable=True)
    _disable_dropout(model)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    run = _Run(
        model=model,
        tokenizer=tokenizer,
        config=config,
        pairs=train_pairs,
        heldout=heldout_pairs,
        device=device_name,
        share_prompt=config.share_prompt and supports_shared_prompt(model),
        ranks=ranks,
    )
    heldout_batches = math.ceil(len(heldout_pairs) / config.batch_size)
    prepare = Reporter(progress, phase="prepare", total=run.n_batches + heldout_batches)
    if report.truncated or report.dropped:
        prepare.message(
            f"{len(report.truncated)} row(s) truncated and {len(report.dropped)} dropped "
            f"(longer than max_length={config.max_length} tokens, truncation={config.truncation!r})"
        )

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise BadInput(f"adapter {adapter} has no trainable parameters after loading")
    ranks.broadcast_parameters(trainable)
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.lr_scheduler, run.warmup_steps, run.total_steps)
    )

    written_checkpoints: list[Path] = []
    try:
        if resume_state is not None:
            _restore_checkpoint(Path(resume_from), resume_state, run, optimizer, scheduler)
        elif config.needs_reference:
            run.compute_reference(fresh_adapter=fresh, reporter=prepare)
        _train_loop(run, optimizer, scheduler, progress, checkpoint_dir, written_checkpoints, fingerprint, data_hash, adapter)
        eval_metrics = _evaluate_heldout(run, progress) if heldout_pairs else {}
    except Cancelled:
        # A cancelled run leaves nothing behind, its own checkpoints included.
        for path in written_checkpoints:
            shutil.rmtree(path, ignore_errors=True)
        raise

    seconds = time.perf_counter() - started
    data_summary = report.as_dict() | {"train_pairs": len(train_pairs), "heldout_pairs": len(heldout_pairs)}
    if ranks.is_main:
        _write_output(
            output_dir, run, source=source, adapter=adapter, parent_meta=parent_meta, fingerprint=fingerprint,
            data_hash=data_hash, data_summary=data_summary, device_name=device_name, eval_metrics=eval_metrics,
        )
    metrics = _final_metrics(run, eval_metrics)
    return {
        "output_dir": str(output_dir),
        "metrics": metrics,
        # A plain sentence when training learned nothing measurable, else None.
        "warning": learned_nothing_warning(metrics),
        "history": run.history,
        "data_hash": data_hash,
        "steps": run.step,
        "data": data_summary,
        "processes": ranks.world,
        "seconds": round(seconds, 3),
        "samples_per_s": round(run.step * config.batch_size * config.grad_accum / seconds, 4) if seconds else None,
    }


def _final_metrics(run: _Run, eval_metrics: dict) -> dict:
    """The run's figures. ``last_epoch/*`` cover every pair of the last epoch; ``loss`` and
    ``rewards/*`` are the last step's (kept for callers that read them)."""
    last = run.history[-1] if run.history else {}
    metrics = {key: last[key] for key in last if key.startswith(("loss", "rewards/"))}
    metrics.update(_last_epoch_metrics(run))
    metrics.update(eval_metrics)
    metrics["train_loss"] = (
        sum(event["loss"] for event in run.history) / len(run.history) if run.history else None
    )
    return metrics


def _write_output(
    output_dir, run: _Run, *, source, adapter, parent_meta, fingerprint, data_hash, data_summary, device_name, eval_metrics
) -> None:
    """The adapter and its metadata, atomically (rank 0 only when several processes train)."""
    from tuning.engine.adapters import adapter_fingerprint, write_metadata
    from tuning.engine.fsutil import atomic_dir

    model, config = run.model, run.config
    devices = sorted({str(d) for d in getattr(model, "hf_device_map", {}).values()})
    if len(devices) > 1:
        device_name = f"auto ({', '.join(devices)})"
    model.eval()
    with atomic_dir(output_dir) as staging:
        model.save_pretrained(staging, selected_adapters=["default"])
        write_metadata(
            staging,
            {
                "kind": "lora",
                "job": "dpo",
                "base_source": str(source),
                "base_fingerprint": fingerprint,
                "parent_adapter": str(adapter) if adapter is not None else None,
                "parent_adapter_fingerprint": adapter_fingerprint(adapter) if adapter is not None else None,
                "parent_metadata": {k: parent_meta.get(k) for k in ("job", "data_hash", "parent_adapter")}
                if parent_meta
                else None,
                "lora": parent_meta.get("lora") if adapter is not None else config.lora.to_dict(),
                "data_hash": data_hash,
                "data": data_summary,
                "hyperparameters": config.to_dict(),
                "final_metrics": _final_metrics(run, eval_metrics),
                "steps": run.step,
                "device": device_name,
                "processes": run.ranks.world,
                "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            },
        )


def _train_loop(run: _Run, optimizer, scheduler, progress, checkpoint_dir, written, fingerprint, data_hash, adapter):
    import torch

    from tuning.engine.progress import Reporter

    config = run.config
    ranks = run.ranks
    reporter = Reporter(progress, phase="train", total=run.total_steps, start=run.step)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    run.model.train()
    while run.step < run.total_steps:
        step_started = time.perf_counter()
        first = run.step * config.grad_accum
        micro = list(range(first, min(first + config.grad_accum, run.total_micro)))
        step_batches = [run.micro_batch(number)[1] for number in micro]
        learning_rate = scheduler.get_last_lr()[0]
        loss_sum = 0.0
        tokens = 0
        # Rewards of each forward pass, with its number in the run (micro[position]).
        chosen_all, rejected_all, numbers = [], [], []
        diverged = None
        for position, indices in ranks.step_share(step_batches):
            result, weights, real_tokens = run.losses_for(run.pairs, indices, "train")
            whole = len(step_batches[position])
            if len(indices) == whole:
                loss = (result.losses * weights).mean() / len(micro)
            else:
                # Part of a micro-batch another rank shares: divide by the whole one's size.
                loss = (result.losses * weights).sum() / whole / len(micro)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = value
                # One process stops at once; several must first agree, at the gather below.
                if not ranks.several:
                    break
                continue
            loss.backward()
            loss_sum += value
            tokens += real_tokens
            chosen_all.append(result.chosen_rewards.float().cpu())
            rejected_all.append(result.rejected_rewards.float().cpu())
            numbers.append(micro[position])
        if ranks.several:
            shares = ranks.gather((loss_sum, tokens, chosen_all, rejected_all, diverged, numbers))
            loss_sum = sum(share[0] for share in shares)
            tokens = sum(share[1] for share in shares)
            chosen_all = [t for share in shares for t in share[2]]
            rejected_all = [t for share in shares for t in share[3]]
            diverged = next((share[4] for share in shares if share[4] is not None), None)
            numbers = [n for share in shares for n in share[5]]
        if diverged is not None:
            raise TrainingDiverged(
                f"DPO loss became {diverged} at step {run.step + 1} of {run.total_steps} "
                f"(learning_rate={learning_rate:g}, beta={config.beta}); lower the learning rate"
            )
        _keep_last_epoch(run, numbers, chosen_all, rejected_all)
        ranks.sum_gradients(params)
        if config.max_grad_norm > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
        else:
            grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
        if not math.isfinite(grad_norm):
            raise TrainingDiverged(
                f"DPO gradients became {grad_norm} at step {run.step + 1} of {run.total_steps}; "
                "lower the learning rate"
            )
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        run.step += 1
        elapsed = time.perf_counter() - step_started
        fields = {
            "loss": loss_sum,
            **_pair_metrics(torch.cat(chosen_all), torch.cat(rejected_all)),
            "learning_rate": learning_rate,
            "grad_norm": grad_norm,
            "tokens_per_s": round(tokens / elapsed, 1) if elapsed > 0 else None,
            "epoch": round((micro[-1] + 1) / run.n_batches, 4),
        }
        event = reporter.event(run.step, **fields)
        run.history.append(event)
        if (
            ranks.is_main
            and checkpoint_dir is not None
            and config.checkpoint_every
            and run.step % config.checkpoint_every == 0
            and run.step < run.total_steps
        ):
            written.append(
                _write_checkpoint(Path(checkpoint_dir), run, optimizer, scheduler, fingerprint, data_hash, adapter)
            )
        reporter.send(run.step, **fields)


def _keep_last_epoch(run: _Run, numbers: list[int], chosen: list, rejected: list) -> None:
    """Record this step's rewards of the forward passes that belong to the last epoch.

    Keyed by batch, so that each pair counts once even where max_steps ends a run in the middle
    of an epoch (a batch seen twice in the window keeps its later scores); several ranks' parts
    of one micro-batch are joined.
    """
    parts: dict[int, tuple[list[float], list[float]]] = {}
    for number, c, r in zip(numbers, chosen, rejected, strict=True):
        if number < run.last_epoch_from:
            continue
        kept_c, kept_r = parts.setdefault(number, ([], []))
        kept_c.extend(c.tolist())
        kept_r.extend(r.tolist())
    for number, values in parts.items():
        run.last_epoch[run.micro_batch(number)[0]] = values


def _evaluate_heldout(run: _Run, progress) -> dict:
    import torch

    from tuning.engine.progress import Reporter

    run.model.eval()
    batches = run.heldout_batches()
    world, rank = run.ranks.world, run.ranks.rank
    reporter = Reporter(progress, phase="eval", total=len(batches))
    # (batch number, losses, chosen, rejected) of the batches this rank scored.
    scored = []
    with torch.no_grad():
        for first in range(0, len(batches), world):
            if first + rank < len(batches):
                result, weights, _ = run.losses_for(run.heldout, batches[first + rank], "heldout")
                scored.append(
                    (
                        first + rank,
                        (result.losses * weights).float().cpu(),
                        result.chosen_rewards.float().cpu(),
                        result.rejected_rewards.float().cpu(),
                    )
                )
            reporter.send(min(first + world, len(batches)))
    if run.ranks.several:
        scored = sorted((item for share in run.ranks.gather(scored) for item in share), key=lambda item: item[0])
    losses = [item[1] for item in scored]
    chosen = [item[2] for item in scored]
    rejected = [item[3] for item in scored]
    metrics = _pair_metrics(torch.cat(chosen), torch.cat(rejected))
    out = {"eval_loss": float(torch.cat(losses).mean())}
    out.update({f"eval_{key}": value for key, value in metrics.items()})
    return out


# -- checkpoints ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_checkpoint(root: Path, run: _Run, optimizer, scheduler, fingerprint, data_hash, adapter) -> Path:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    from tuning.engine.fsutil import atomic_dir

    target = root / f"step-{run.step:06d}"
    with atomic_dir(target) as staging:
        weights = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(run.model).items()}
        save_file(weights, str(staging / "adapter_weights.safetensors"))
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "reference": run.ref,
            },
            staging / "optimizer.pt",
        )
        state = {
            "step": run.step,
            "total_steps": run.total_steps,
            "config": run.config.math_settings(),
            "data_hash": data_hash,
            "base_fingerprint": fingerprint,
            "parent_adapter": str(adapter) if adapter is not None else None,
            "history": run.history,
            "last_epoch": {str(batch): values for batch, values in run.last_epoch.items()},
        }
        (staging / CHECKPOINT_STATE).write_text(json.dumps(_jsonable(state), indent=1))
    # Older checkpoints are superseded; keep the last few in case the newest is damaged.
    existing = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in existing[:-CHECKPOINTS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _read_checkpoint(path: str | os.PathLike) -> dict:
    folder = Path(path)
    state_file = folder / CHECKPOINT_STATE
    if not state_file.is_file() or not (folder / "optimizer.pt").is_file():
        raise BadInput(f"{folder} is not a DPO checkpoint ({CHECKPOINT_STATE} or optimizer.pt missing)")
    return json.loads(state_file.read_text())


def _restore_checkpoint(folder: Path, state: dict, run: _Run, optimizer, scheduler) -> None:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(folder / "adapter_weights.safetensors"), device=run.device)
    set_peft_model_state_dict(run.model, weights)
    # The file holds our own optimiser state (tensors and plain numbers), so full unpickling is
    # not needed; weights_only keeps a tampered checkpoint from running code.
    saved = torch.load(folder / "optimizer.pt", map_location=run.device, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    run.ref = {name: (c.cpu(), r.cpu()) for name, (c, r) in saved["reference"].items()}
    run.step = int(state["step"])
    run.history = list(state["history"])
    run.last_epoch = {int(batch): (c, r) for batch, (c, r) in state.get("last_epoch", {}).items()}
