"""DPO-family losses on summed response log-probabilities, written to match TRL 1.16's formulas.

TRL 1.16's ``DPOTrainer`` supports all of sigmoid, hinge, ipo, robust and sigmoid_norm (and the
others below); our trainer computes log-probabilities its own way (shared prompts, reference
precomputed), so it carries these formulas itself. ``tests/tuning/engine/test_losses.py`` checks
them against TRL's trainer on the same batch.

Two length-aware losses come from elsewhere:

* ``simpo`` (SimPO, Meng et al. 2024) needs no reference: its reward is the policy's *average*
  per-token log-probability, ``beta * logp / length``, and the loss is
  ``-log sigmoid(beta * (avg_chosen - avg_rejected) - gamma)`` with a target margin gamma
  (``simpo_gamma``). TRL runs it as ``CPOTrainer(loss_type="simpo", cpo_alpha=0)``; the test
  checks ours against that. Its implicit rewards (``rewards/chosen`` ...) are therefore
  ``beta * average log-prob`` under the policy alone, not a change from a reference: they are
  not zero at the first step, and margins compare answers, not policies.
* ``rdpo`` (R-DPO, Park et al. 2024, "Disentangling length from quality in DPO") is sigmoid DPO
  with the length difference inside the sigmoid:
  ``-log sigmoid(beta * delta + alpha * (|y_chosen| - |y_rejected|))`` (lengths in tokens,
  alpha = ``length_alpha``). The part of a preference that length explains no longer has to be
  learned: alpha > 0 (the paper's use) keeps the adapter from learning "longer wins", alpha < 0
  keeps it from learning "shorter wins".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "robust",
    "sigmoid_norm",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "apo_zero",
    "apo_down",
    "discopop",
    "simpo",
    "rdpo",
)
# Losses computed from the policy alone: training skips the reference pass for them.
REFERENCE_FREE = ("simpo",)


@dataclass
class PairLosses:
    losses: torch.Tensor  # [B] per-pair loss
    # [B] beta * (log pi - log ref) of the chosen response, detached; SimPO: beta * average log pi.
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor  # [B] same for the rejected response


def check_loss_settings(loss_type: str, beta: float, label_smoothing: float) -> str | None:
    """A message saying what is wrong with these settings, or None."""
    if loss_type not in LOSS_TYPES:
        return f"unknown loss type {loss_type!r}; use one of: {', '.join(LOSS_TYPES)}"
    if not beta > 0:
        return f"beta must be > 0, got {beta}"
    if loss_type == "robust" and not 0.0 <= label_smoothing < 0.5:
        return f"the robust loss needs 0 <= label_smoothing < 0.5, got {label_smoothing}"
    if loss_type == "exo_pair" and not 0.0 < label_smoothing < 1.0:
        return f"the exo_pair loss needs 0 < label_smoothing < 1 (the paper uses 1e-3), got {label_smoothing}"
    if loss_type == "simpo" and not 0.0 <= label_smoothing < 0.5:
        return f"the simpo loss needs 0 <= label_smoothing < 0.5, got {label_smoothing}"
    return None


def dpo_losses(
    *,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor | None,
    ref_rejected: torch.Tensor | None,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    discopop_tau: float = 0.05,
    simpo_gamma: float = 0.5,
    length_alpha: float = 0.0,
) -> PairLosses:
    """Per-pair losses and implicit rewards from summed log-probabilities (all shaped [B]).

    The reference log-probs may be None for a loss in REFERENCE_FREE.
    """
    if loss_type == "simpo":
        return _simpo(
            policy_chosen / chosen_lengths.clamp(min=1),
            policy_rejected / rejected_lengths.clamp(min=1),
            beta=beta,
            gamma=simpo_gamma,
            label_smoothing=label_smoothing,
        )
    if ref_chosen is None or ref_rejected is None:
        raise ValueError(f"the {loss_type} loss needs the reference log-probabilities")
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    delta = chosen_ratio - rejected_ratio

    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * delta)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    elif loss_type == "ipo":
        # IPO on per-token averages (TRL's choice, confirmed with the IPO authors), so that beta
        # (the paper's tau) does not depend on response length.
        avg_delta = chosen_ratio / chosen_lengths.clamp(min=1) - rejected_ratio / rejected_lengths.clamp(min=1)
        losses = (avg_delta - 1 / (2 * beta)) ** 2
    elif loss_type == "robust":
        # Robust DPO: label_smoothing is the probability that a label was flipped.
        clean = -(1 - label_smoothing) * F.logsigmoid(beta * delta)
        flipped = -label_smoothing * F.logsigmoid(-beta * delta)
        losses = (clean - flipped) / (1 - 2 * label_smoothing)
    elif loss_type == "sigmoid_norm":
        avg_delta = chosen_ratio / chosen_lengths.clamp(min=1) - rejected_ratio / rejected_lengths.clamp(min=1)
        losses = -F.logsigmoid(beta * avg_delta)
    elif loss_type == "exo_pair":
        epsilon = torch.tensor(label_smoothing, device=delta.device, dtype=delta.dtype)
        qw, log_qw = torch.sigmoid(beta * delta), F.logsigmoid(beta * delta)
        ql, log_ql = torch.sigmoid(-beta * delta), F.logsigmoid(-beta * delta)
        losses = qw * (log_qw - torch.log1p(-epsilon)) + ql * (log_ql - torch.log(epsilon))
    elif loss_type == "nca_pair":
        chosen_r, rejected_r = beta * chosen_ratio, beta * rejected_ratio
        losses = -F.logsigmoid(chosen_r) - 0.5 * F.logsigmoid(-chosen_r) - 0.5 * F.logsigmoid(-rejected_r)
    elif loss_type == "bco_pair":
        losses = -F.logsigmoid(beta * chosen_ratio) - F.logsigmoid(-beta * rejected_ratio)
    elif loss_type == "sppo_hard":
        losses = (chosen_ratio - 0.5 / beta) ** 2 + (rejected_ratio + 0.5 / beta) ** 2
    elif loss_type == "apo_zero":
        losses = (1 - torch.sigmoid(beta * chosen_ratio)) + torch.sigmoid(beta * rejected_ratio)
    elif loss_type == "apo_down":
        losses = torch.sigmoid(beta * chosen_ratio) + (1 - torch.sigmoid(beta * delta))
    elif loss_type == "discopop":
        logits = beta * delta
        modulation = torch.sigmoid(logits / discopop_tau)
        losses = -F.logsigmoid(logits) * (1 - modulation) + torch.exp(-logits) * modulation
    elif loss_type == "rdpo":
        length_gap = (chosen_lengths - rejected_lengths).to(delta.dtype)
        losses = -F.logsigmoid(beta * delta + length_alpha * length_gap)
    else:
        raise ValueError(f"unknown loss type {loss_type!r}")

    return PairLosses(
        losses=losses,
        chosen_rewards=(beta * chosen_ratio).detach(),
        rejected_rewards=(beta * rejected_ratio).detach(),
    )


def _simpo(avg_chosen, avg_rejected, *, beta: float, gamma: float, label_smoothing: float) -> PairLosses:
    # TRL's CPOTrainer form: label_smoothing is its conservative (cDPO-style) flip probability.
    logits = beta * (avg_chosen - avg_rejected) - gamma
    losses = -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)
    return PairLosses(
        losses=losses,
        chosen_rewards=(beta * avg_chosen).detach(),
        rejected_rewards=(beta * avg_rejected).detach(),
    )


def is_finite(value: float) -> bool:
    return math.isfinite(value)
