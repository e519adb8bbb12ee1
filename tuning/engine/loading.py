"""Loading base models and policies (base + optional LoRA adapter).

A GGUF source is dequantised once and cached as a plain safetensors folder under ``cache_dir``,
keyed by the hash of the GGUF bytes; later loads read that folder, which takes well under a second.
The cache folder appears atomically (written to a temporary folder, then renamed), so a crash or a
concurrent loader never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuning.engine import sources
from tuning.engine.errors import BadInput
from tuning.engine.fsutil import make_readable
from tuning.engine.sources import base_fingerprint, resolve_source

if TYPE_CHECKING:
    import torch

__all__ = [
    "base_fingerprint",
    "input_device",
    "load_base",
    "load_policy",
    "load_tokenizer",
    "materialise",
    "resolve_device_dtype",
]

logger = logging.getLogger(__name__)

# A tokenizer without a chat template gets ChatML, the format SmolLM2 and many others use.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}

# Marker file inside a cache folder: which source it was made from.
_CACHE_MARKER = "prefloop-source.json"


def resolve_device_dtype(device: str | None = None, dtype: Any = None) -> tuple[str, torch.dtype]:
    """Choose where and in what precision to run: CUDA + bf16 where present, CPU + fp32 otherwise.

    Either part can be forced: ``device`` ("cpu", "cuda", "cuda:1", or "auto") and ``dtype`` (a
    torch dtype or a name such as "bf16", "float32"). "auto" spreads a model too big for one card
    over all the host's cards (Accelerate's big-model placement); without CUDA it is plain "cpu".
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device == "auto" and not torch.cuda.is_available():
        device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {device!r} requested but CUDA is not available on this machine")
    if dtype is None:
        if device.startswith("cuda") or device == "auto":
            # bf16 keeps fp32's exponent range, so training needs no loss scaling; GPUs older than
            # Ampere lack it and fall back to fp32 rather than fp16.
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        else:
            dtype = torch.float32
    elif isinstance(dtype, str):
        name = _DTYPE_NAMES.get(dtype.lower().replace("torch.", ""))
        if name is None:
            raise BadInput(f"unknown dtype {dtype!r}; use one of: {', '.join(sorted(_DTYPE_NAMES))}")
        dtype = getattr(torch, name)
    elif not isinstance(dtype, torch.dtype):
        raise BadInput(f"dtype must be a torch dtype or a name, got {dtype!r}")
    return device, dtype


def _cache_folder(cache_dir: str | os.PathLike | None, fingerprint: str) -> Path:
    root = Path(cache_dir) if cache_dir is not None else sources.default_cache_dir()
    # "gguf-sha256:abcd..." -> "gguf-abcd..." (24 hex digits, 96 bits, avoid collisions in practice).
    kind, _, digest = fingerprint.partition("-sha256:")
    return root / f"{kind}-{digest[:24]}"


def materialise(source: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """Return a Hugging Face folder holding the source's model and tokenizer.

    A folder source is returned as is. A GGUF source is dequantised into ``cache_dir`` on first
    use (about 20 s for the default model on 2 CPU cores) and read from there afterwards.
    """
    resolved = resolve_source(source)
    if resolved.kind == "hf":
        return resolved.path
    fingerprint = base_fingerprint(source)
    target = _cache_folder(cache_dir, fingerprint)
    if (target / _CACHE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            _dequantise_gguf(resolved.path, staging)
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise BadInput(f"cannot read GGUF model {resolved.path}: {error}") from error
        (staging / _CACHE_MARKER).write_text(
            json.dumps({"source": resolved.source, "gguf": str(resolved.path), "fingerprint": fingerprint})
        )
        make_readable(staging)
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished the same conversion first; its folder is equivalent.
            if not (target / _CACHE_MARKER).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _dequantise_gguf(gguf_path: Path, folder: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("dequantising %s (once; cached afterwards)", gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    # save_pretrained refuses a model loaded from GGUF (it still carries the GGUF quantisation
    # config), so rebuild a plain model from its config and state dict; assign=True shares the
    # tensors instead of copying them.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(folder, safe_serialization=True)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)


def load_tokenizer(folder: str | os.PathLike, *, padding_side: str = "left"):
    """The folder's tokenizer with a chat template and a pad token (the end token if none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_base(
    source: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    task: str = "causal-lm",
):
    """Load a base model and its tokenizer -> ``(model, tokenizer)``, in eval mode.

    ``task`` is "causal-lm" (a language model) or "seq-cls" (a one-score sequence classifier on
    the same backbone, for reward models; its score head is new).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from tuning.engine.threads import configure_torch_threads

    # Every engine entry point (training, generation, scoring, evaluation, the command line)
    # loads its model here, so this one call sizes torch's CPU threads for all of them.
    configure_torch_threads()
    folder = materialise(source, cache_dir=cache_dir)
    device, dtype = resolve_device_dtype(device, dtype)
    tokenizer = load_tokenizer(folder)
    # "auto": Accelerate places whole layers on the cards in turn (filling the first, then the
    # next) and its hooks move activations from card to card; the model is never whole on one.
    placement = {"device_map": "auto"} if device == "auto" else {}
    if task == "causal-lm":
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **placement)
    elif task == "seq-cls":
        from transformers.utils import logging as hf_logging

        # The score head is new by design; transformers' "newly initialized" report would only
        # alarm whoever reads the job log.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, dtype=dtype, num_labels=1, **placement
            )
        finally:
            hf_logging.set_verbosity(verbosity)
    else:
        raise BadInput(f"unknown task {task!r}; use 'causal-lm' or 'seq-cls'")
    # The model must agree with the tokenizer on padding, or a classifier cannot find each
    # sequence's last token and generate() warns on every call.
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if not placement:
        model.to(device)
    model.eval()
    model.prefloop_source = str(source)
    return model, tokenizer


def input_device(model: Any) -> torch.device:
    """Where a batch must go: the device of the input embeddings.

    On a model split over several cards (``device="auto"``) the first parameter need not sit on
    the card that takes the input; the embeddings always do.
    """
    embeddings = model.get_input_embeddings()
    if embeddings is not None:
        weight = getattr(embeddings, "weight", None)
        if weight is not None and weight.device.type != "meta":
            return weight.device
    return next(model.parameters()).device


def load_policy(
    source: str | os.PathLike,
    adapter: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: Any = None,
    trainable: bool = False,
    adapter_name: str = "default",
):
    """Load base + optional LoRA adapter -> ``(model, tokenizer)``.

    Without an adapter this is the bare base. An adapter trained on another base model is refused
    (BadInput), as is a folder that is missing or holds no adapter.
    """
    from tuning.engine.adapters import attach_adapter

    model, tokenizer = load_base(source, cache_dir=cache_dir, device=device, dtype=dtype)
    if adapter is None:
        return model, tokenizer
    model = attach_adapter(
        model, adapter, source=source, trainable=trainable, adapter_name=adapter_name
    )
    return model, tokenizer
