"""Glue between TRL / transformers ``Trainer`` runs and the engine's progress contract.

Reward models (TRL ``RewardTrainer``) and best-of-N distillation (TRL ``SFTTrainer``) run inside
the Hugging Face ``Trainer``; this callback turns its logs into progress events, stops the run
when the caller asks, and notices a NaN loss.
"""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback

from tuning.engine.progress import ProgressCallback, Reporter

# Trainer log keys -> contract keys.
_RENAMES = {"loss": "loss", "learning_rate": "learning_rate", "epoch": "epoch", "grad_norm": "grad_norm"}


class ProgressBridge(TrainerCallback):
    """Forwards each step's logged metrics; remembers a stop request or a diverged loss."""

    def __init__(self, callback: ProgressCallback | None, *, phase: str = "train"):
        self.callback = callback
        self.phase = phase
        self.reporter: Reporter | None = None
        self.history: list[dict] = []
        self.stop_requested = False
        self.diverged: str | None = None
        self._last_time = time.perf_counter()
        self._tokens_seen = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.reporter = Reporter(None, phase=self.phase, total=state.max_steps)
        self._last_time = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "loss" not in logs or self.reporter is None:
            return control
        now = time.perf_counter()
        tokens = float(logs.get("num_tokens", self._tokens_seen))
        elapsed = now - self._last_time
        fields: dict[str, Any] = {_RENAMES.get(k, k): v for k, v in logs.items() if k != "num_tokens"}
        fields["tokens_per_s"] = round((tokens - self._tokens_seen) / elapsed, 1) if elapsed > 0 else None
        self._tokens_seen, self._last_time = tokens, now
        event = self.reporter.event(state.global_step, **fields)
        self.history.append(event)
        loss = logs.get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            self.diverged = f"loss became {loss} at step {state.global_step} of {state.max_steps}"
            control.should_training_stop = True
            return control
        if self.callback is not None and self.callback(event) is True:
            self.stop_requested = True
            control.should_training_stop = True
        return control


def trainer_precision(model: Any) -> dict:
    """TrainingArguments precision flags matching the model's dtype and device."""
    import torch

    parameter = next(model.parameters())
    on_cpu = parameter.device.type == "cpu"
    return {
        "use_cpu": on_cpu,
        "bf16": parameter.dtype == torch.bfloat16,
        "fp16": False,
    }
