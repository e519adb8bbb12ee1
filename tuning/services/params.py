"""Hyperparameters of each job kind: defaults, bounds and help text, in one place.

The launch form, the API and the validation before queueing all read these specs, so the
defaults a person sees on the form are the ones a script gets when it leaves a field out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    # "int", "float", "bool", "choice", "text", "int_list"
    type: str
    default: Any
    help: str
    label: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    # Shown on the form under "Advanced" (folded) rather than at the top.
    advanced: bool = False
    max_length: int = 0

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class ParamError:
    field: str
    message: str


# Shared pieces ---------------------------------------------------------------------------

_SEED = Param("seed", "int", 0, "Random seed: the same seed and data give the same run.", min=0, max=2**31 - 1, advanced=True)
_MAX_LENGTH = Param(
    "max_length", "int", 512,
    "Longest prompt + answer in tokens; longer rows are cut from the left of the prompt.",
    min=16, max=32768, advanced=True,
)
_LORA_R = Param(
    "lora_r", "int", 16,
    "Rank of a fresh LoRA adapter (ignored when continuing an adapter): more rank, more capacity.",
    label="LoRA rank", min=1, max=512, advanced=True,
)
_LORA_ALPHA = Param(
    "lora_alpha", "int", 32,
    "LoRA scaling numerator for a fresh adapter; the update is multiplied by alpha / rank.",
    label="LoRA alpha", min=1, max=4096, advanced=True,
)
_CHECKPOINT = Param(
    "checkpoint_every", "int", 50,
    "Save a checkpoint every this many optimisation steps; a job whose worker dies resumes "
    "from the last one.",
    min=1, max=1_000_000, advanced=True,
)
_TEMPERATURE = Param("temperature", "float", 0.8, "Sampling temperature; 0 answers greedily.", min=0.0, max=5.0)
_TOP_P = Param("top_p", "float", 0.95, "Nucleus sampling: keep the smallest set of tokens with this much probability.", min=0.01, max=1.0, advanced=True)
_MAX_NEW = Param("max_new_tokens", "int", 128, "Longest answer, in tokens.", min=1, max=8192)

_EVALUATE = (
    Param(
        "evaluate", "bool", True,
        "When the job succeeds, answer the project's held-out prompts with the adapter before "
        "and after, and send the pairs to reviewers as blind comparisons.",
        label="Evaluate afterwards",
    ),
    Param(
        "eval_max_prompts", "int", 16,
        "Held-out prompts the evaluation answers (the first ones). 16 is one batch per side: each "
        "further batch costs as much time again.",
        label="Evaluation prompts", min=1, max=5000, advanced=True,
    ),
    Param(
        "eval_max_new_tokens", "int", 384,
        "Longest evaluation answer, in tokens: room for the default model's answers to finish "
        "(one cut off reads as unfinished to reviewers; the evaluation page marks it).",
        label="Evaluation answer length", min=1, max=8192, advanced=True,
    ),
    Param(
        "baseline_base", "bool", True,
        "Also pit the new adapter against the bare base model (when it did not start from it).",
        label="Baseline: bare base model", advanced=True,
    ),
    Param(
        "baseline_system_prompt", "text", "",
        "Also pit the new adapter against the input adapter given this system prompt: the "
        "cheaper fix to rule out. Empty: no such baseline.",
        label="Baseline: system prompt", advanced=True, max_length=4000,
    ),
    Param(
        "drift_threshold", "float", 0.1,
        "Warn when the new adapter's mean per-token KL from its parent on everyday prompts "
        "passes this (nats per token).",
        min=0.0, max=100.0, advanced=True,
    ),
)

_TRAINING = (
    Param("learning_rate", "float", 5e-5, "Step size of the optimiser (AdamW).", min=1e-9, max=1.0),
    Param(
        "epochs", "int", None,
        "Passes over the preference set. Empty: scaled to the set, at least 48 steps and at most "
        "8 passes, so a small set still moves the adapter.",
        nullable=True, min=1, max=1000,
    ),
    Param("max_steps", "int", None, "Stop after this many optimisation steps (empty: run all epochs).", nullable=True, min=1, max=10_000_000),
    Param("batch_size", "int", 4, "Preference pairs per optimisation step.", min=1, max=4096),
    Param("grad_accum", "int", 1, "Batches whose gradients are summed before each step.", label="Gradient accumulation", min=1, max=4096, advanced=True),
    _MAX_LENGTH,
    _SEED,
)

_REWARD_EPOCHS = Param("epochs", "int", 1, "Passes over the preference set.", min=1, max=1000)

SPECS: dict[str, tuple[Param, ...]] = {
    "dpo": (
        Param(
            "beta", "float", 0.1,
            "How strongly the adapter is held to where it started: smaller lets it move further "
            "from the reference. For simpo it scales the reward instead; its paper uses 2 to 2.5.",
            min=1e-6, max=100.0,
        ),
        Param(
            "loss_type", "choice", "sigmoid",
            "DPO's loss: sigmoid (the paper's), ipo (robust to overfitting on small sets), hinge "
            "(SLiC), robust (for noisy labels), simpo (no reference, per-token average so longer "
            "answers earn no extra reward; set beta to about 2), rdpo (sigmoid with the length "
            "difference taken out, see length alpha).",
            choices=("sigmoid", "ipo", "hinge", "robust", "simpo", "rdpo"),
        ),
        Param(
            "simpo_gamma", "float", 0.5,
            "simpo only: how far, in beta times nats per token, the chosen answer's average "
            "log-probability must beat the rejected one's before a pair stops pulling. The SimPO "
            "paper uses about half of beta (beta 2, gamma 1).",
            label="SimPO gamma", min=0.0, max=100.0, advanced=True,
        ),
        Param(
            "length_alpha", "float", 0.01,
            "rdpo only: credit per token of length difference (chosen minus rejected) inside the "
            "loss, so that a preference length alone explains is not learned. Positive (the R-DPO "
            "paper's use) stops the adapter learning that longer wins; negative, that shorter wins.",
            label="R-DPO length alpha", min=-1.0, max=1.0, advanced=True,
        ),
        *_TRAINING,
        Param(
            "heldout_fraction", "float", 0.1,
            "Share of the pairs kept out of training to measure preference accuracy on pairs "
            "the adapter never saw (skipped when the set has fewer than 10 pairs).",
            label="Held-out fraction", min=0.0, max=0.5, advanced=True,
        ),
        _LORA_R,
        _LORA_ALPHA,
        _CHECKPOINT,
        *_EVALUATE,
    ),
    "reward_model": (
        Param("learning_rate", "float", 1e-4, "Step size of the optimiser (AdamW).", min=1e-9, max=1.0),
        # The reward model's trainer has no set-scaled epochs: one pass unless told otherwise.
        *(_REWARD_EPOCHS if p.name == "epochs" else p for p in _TRAINING[1:]),
        _LORA_R,
        _LORA_ALPHA,
    ),
    "rejection_sampling": (
        Param("n", "int", 4, "Answers sampled per prompt; the reward keeps the best.", min=2, max=256),
        Param(
            "mode", "choice", "sft",
            "sft: fine-tune the adapter on the best answers (a new adapter); pairs: send best vs "
            "worst answers to reviewers as comparisons.",
            choices=("sft", "pairs"),
        ),
        Param(
            "reward", "choice", "implicit",
            "What scores the answers: implicit (the DPO adapter's own reward against its parent) "
            "or model (a trained reward-model adapter).",
            choices=("implicit", "model"),
        ),
        Param(
            "reward_adapter", "int", None,
            "The adapter that scores: a DPO adapter for implicit (empty: the input adapter), a "
            "reward-model adapter for model. The launch form lists the project's adapters.",
            label="Scored by", nullable=True, min=1,
        ),
        Param("reward_beta", "float", 0.1, "Beta of the implicit reward.", min=1e-6, max=100.0, advanced=True),
        Param("split", "choice", "train", "Which of the project's prompts to sample for.", choices=("train", "heldout", "all")),
        # 8 prompts x 4 answers: two generation batches, a run of minutes on a CPU.
        Param("max_prompts", "int", 8, "Most prompts sampled (the first ones).", min=1, max=100_000),
        _TEMPERATURE,
        _TOP_P,
        Param(
            "max_new_tokens", "int", 256,
            "Longest answer, in tokens. An answer cut off here is kept only when all of its "
            "prompt's answers were.",
            min=1, max=8192,
        ),
        Param("learning_rate", "float", 5e-5, "SFT step size (mode sft).", min=1e-9, max=1.0, advanced=True),
        Param("epochs", "int", 1, "SFT passes over the kept answers (mode sft).", min=1, max=1000, advanced=True),
        Param("batch_size", "int", 4, "SFT examples per step (mode sft).", min=1, max=4096, advanced=True),
        _MAX_LENGTH,
        _SEED,
        _LORA_R,
        *_EVALUATE,
    ),
    "generate": (
        Param(
            "opponent", "choice", "same",
            "What answers on the other side: same (a second sample from the adapter), base (the "
            "bare base model) or adapter (the second adapter below).",
            choices=("same", "base", "adapter"),
        ),
        Param("adapter_b", "int", None, "The second adapter (opponent 'adapter').", label="Second adapter", nullable=True, min=1),
        Param(
            "samples", "int", 2,
            "Answers per prompt when the opponent is 'same'; they are paired as below.",
            label="Answers per prompt", min=2, max=8, advanced=True,
        ),
        Param(
            "pairing", "choice", "all",
            "How a prompt's answers become comparisons: all (every two) or reward_gap (best "
            "against worst by the adapter's own implicit reward, then the next pair inwards).",
            choices=("all", "reward_gap"), advanced=True,
        ),
        Param("split", "choice", "train", "Which of the project's prompts to answer.", choices=("train", "heldout", "all")),
        Param("prompt_ids", "int_list", None, "Only these prompts (ids), instead of the split.", label="Prompt ids", nullable=True, advanced=True),
        Param("max_prompts", "int", 32, "Most prompts answered (the first ones not yet compared).", min=1, max=100_000),
        _TEMPERATURE,
        _TOP_P,
        _MAX_NEW,
        Param("required_judgments", "int", None, "Judgments each comparison needs (empty: the project's overlap).", nullable=True, min=1, max=50, advanced=True),
        _SEED,
    ),
    "evaluate": (
        Param(
            "before", "choice", "parent",
            "What 'before' is: parent (the adapter this one was trained from), base (the bare "
            "base model) or adapter (the one below).",
            choices=("parent", "base", "adapter"),
        ),
        Param("before_adapter", "int", None, "The 'before' adapter (before 'adapter').", nullable=True, min=1),
        Param("beta", "float", None, "Beta of the implicit reward for preference accuracy (empty: the adapter's own training beta, else 0.1).", nullable=True, min=1e-6, max=100.0, advanced=True),
        *(p for p in _EVALUATE if p.name != "evaluate"),
        _SEED,
    ),
}

KIND_HELP = {
    "dpo": "Direct preference optimisation on a frozen preference set: a new LoRA adapter.",
    "reward_model": "A reward model (LoRA on a one-score head) trained on a preference set.",
    "rejection_sampling": "Sample several answers per prompt, keep the best by a reward, then fine-tune on them or send them for review.",
    "generate": "Answer prompts with one or two models and send the pairs to reviewers as blind comparisons.",
    "evaluate": "Before/after answers on held-out prompts as blind comparisons, plus preference accuracy and drift.",
}


def param_defaults(kind: str) -> dict[str, Any]:
    return {p.name: p.default for p in SPECS[kind]}


def _coerce(param: Param, value: Any) -> Any:
    """The value in the param's type, or raise ValueError with a reason a person understands."""
    if value is None or (isinstance(value, str) and value.strip() == "" and param.type != "text"):
        if param.nullable:
            return None
        raise ValueError("is required")
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "on", "1", "yes"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "off", "0", "no"):
            return False
        raise ValueError(f"must be true or false, not {value!r}")
    if param.type == "int":
        if isinstance(value, bool):
            raise ValueError(f"must be a whole number, not {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"must be a whole number, not {value!r}") from None
        if not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {value!r}")
        return value
    if param.type == "float":
        if isinstance(value, bool):
            raise ValueError(f"must be a number, not {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a number, not {value!r}") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if param.type == "choice":
        if value not in param.choices:
            raise ValueError(f"must be one of {', '.join(param.choices)}, not {value!r}")
        return value
    if param.type == "text":
        if not isinstance(value, str):
            raise ValueError("must be text")
        if param.max_length and len(value) > param.max_length:
            raise ValueError(f"must be at most {param.max_length} characters")
        return value.strip()
    if param.type == "int_list":
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        if not isinstance(value, list) or not value:
            raise ValueError("must be a list of ids")
        try:
            return [int(item) for item in value]
        except (TypeError, ValueError):
            raise ValueError("must be a list of whole numbers") from None
    raise AssertionError(f"unknown param type {param.type}")


def params_clean(*, kind: str, raw: dict | None) -> tuple[dict, list[ParamError]]:
    """Fill defaults and check every value -> (params, errors). Unknown names are errors."""
    spec = {p.name: p for p in SPECS[kind]}
    raw = dict(raw or {})
    errors = [
        ParamError(f"params.{name}", f"unknown parameter for a {kind} job; known: {', '.join(spec)}")
        for name in raw
        if name not in spec
    ]
    cleaned: dict[str, Any] = {}
    for name, param in spec.items():
        if name not in raw:
            cleaned[name] = param.default
            continue
        try:
            value = _coerce(param, raw[name])
        except ValueError as exc:
            errors.append(ParamError(f"params.{name}", str(exc)))
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if param.min is not None and value < param.min:
                errors.append(ParamError(f"params.{name}", f"must be at least {param.min:g}"))
                continue
            if param.max is not None and value > param.max:
                errors.append(ParamError(f"params.{name}", f"must be at most {param.max:g}"))
                continue
        cleaned[name] = value
    return cleaned, errors


@dataclass
class LaunchSpec:
    """What a launch names besides the params (ids as given; checked by job_launch)."""

    kind: str
    project_id: int
    preference_set_id: int | None = None
    adapter_id: int | None = None
    params: dict = field(default_factory=dict)
