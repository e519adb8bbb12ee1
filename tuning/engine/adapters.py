"""LoRA adapters: the spec of a new one, attaching saved ones, and their ``prefloop.json`` metadata.

An adapter folder is PEFT's ``save_pretrained`` layout plus ``prefloop.json``, which records the
base model's fingerprint (so an adapter is never applied to another base), the parent adapter,
the data hash, the hyperparameters, the final metrics and the library versions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuning.engine.errors import BadInput
from tuning.engine.sources import base_fingerprint

METADATA_FILE = "prefloop.json"
METADATA_FORMAT = 1

# The attention and MLP projections of Llama-style models (Llama, Mistral, Qwen, SmolLM...).
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "safetensors")


@dataclass
class LoraSpec:
    """A new LoRA adapter's shape."""

    # Rank of the update matrices; more rank, more capacity and more memory.
    r: int = 16
    # Scaling numerator: the update is multiplied by alpha / r.
    alpha: int = 32
    # Dropout on the adapter's input; DPO turns it off for exact reference log-probs.
    dropout: float = 0.0
    # Module names (suffixes) that get an adapter.
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    # Which transformer blocks: "all", "last_third", or [start, end) block indices.
    layers: str | list[int] = "all"

    def layer_indices(self, num_layers: int) -> list[int] | None:
        """The block indices to adapt, or None for all of them."""
        if self.layers == "all":
            return None
        if self.layers == "last_third":
            return list(range(num_layers - max(1, num_layers // 3), num_layers))
        if isinstance(self.layers, list | tuple) and len(self.layers) == 2:
            start, end = (int(x) for x in self.layers)
            if not 0 <= start < end <= num_layers:
                raise BadInput(
                    f"LoRA layers [{start}, {end}) out of range: the model has {num_layers} blocks"
                )
            return list(range(start, end))
        raise BadInput(f"LoRA layers must be 'all', 'last_third' or [start, end), got {self.layers!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> LoraSpec:
        if data is None:
            return cls()
        if isinstance(data, LoraSpec):
            return data
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise BadInput(f"unknown LoRA settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a trained adapter's numbers."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def adapter_fingerprint(adapter_dir: str | os.PathLike) -> str:
    """SHA-256 over an adapter folder's config and weights."""
    folder = Path(adapter_dir)
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name == "adapter_config.json" or name.startswith("adapter_model."):
            digest.update(name.encode())
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def read_metadata(adapter_dir: str | os.PathLike) -> dict:
    """The adapter's ``prefloop.json`` ({} for a foreign PEFT adapter without one)."""
    folder = check_adapter_folder(adapter_dir)
    path = folder / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BadInput(f"adapter metadata {path} is not valid JSON: {error}") from error


def write_metadata(folder: str | os.PathLike, metadata: dict) -> None:
    data = {
        "format": METADATA_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "library_versions": library_versions(),
        **metadata,
    }
    Path(folder, METADATA_FILE).write_text(json.dumps(data, indent=2, sort_keys=True, default=str))


def check_adapter_folder(adapter_dir: str | os.PathLike) -> Path:
    """The adapter folder, or BadInput when it is missing or holds no adapter."""
    folder = Path(adapter_dir)
    if not folder.exists():
        raise BadInput(f"adapter folder {folder} does not exist")
    if not folder.is_dir():
        raise BadInput(f"adapter {folder} is not a folder")
    if not (folder / "adapter_config.json").is_file():
        raise BadInput(f"adapter folder {folder} holds no adapter (adapter_config.json is missing)")
    return folder


def check_adapter_base(adapter_dir: str | os.PathLike, source: str | os.PathLike) -> dict:
    """Refuse an adapter recorded as trained on another base model; return its metadata."""
    metadata = read_metadata(adapter_dir)
    recorded = metadata.get("base_fingerprint")
    if recorded is not None and recorded != base_fingerprint(source):
        raise BadInput(
            f"adapter {adapter_dir} was trained on another base model "
            f"({metadata.get('base_source', 'unknown source')}, fingerprint {recorded[:24]}...), "
            f"not on {source}"
        )
    return metadata


def peft_config_for(model: Any, spec: LoraSpec, *, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    num_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        layers_to_transform=spec.layer_indices(num_layers),
        bias="none",
        task_type=task_type,
    )


def attach_lora(model: Any, spec: LoraSpec, *, seed: int = 0, task_type: str = "CAUSAL_LM"):
    """Wrap a base model with a fresh, trainable LoRA adapter named "default".

    The adapter's B matrices start at zero, so the wrapped model computes exactly what the base
    does until the first update.
    """
    import torch
    from peft import get_peft_model

    config = peft_config_for(model, spec, task_type=task_type)
    # The A matrices are random: seed them so a run is reproducible.
    torch.manual_seed(seed)
    try:
        return get_peft_model(model, config)
    except ValueError as error:
        raise BadInput(f"cannot build the LoRA adapter on this model: {error}") from error


def attach_adapter(
    model: Any,
    adapter_dir: str | os.PathLike,
    *,
    source: str | os.PathLike,
    trainable: bool = False,
    adapter_name: str = "default",
):
    """Load a saved adapter onto ``model`` (a base model or a PeftModel that holds others)."""
    from peft import PeftModel

    folder = check_adapter_folder(adapter_dir)
    metadata = check_adapter_base(folder, source)
    if metadata.get("kind") == "reward_model":
        raise BadInput(f"{folder} is a reward model, not a policy adapter")
    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(folder), adapter_name=adapter_name, is_trainable=trainable)
            return model
        return PeftModel.from_pretrained(
            model, str(folder), adapter_name=adapter_name, is_trainable=trainable
        )
    except (RuntimeError, ValueError, KeyError) as error:
        # A size mismatch is what an adapter for another architecture looks like to PEFT.
        raise BadInput(f"adapter {folder} does not fit base model {source}: {error}") from error


def new_adapter(
    *,
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    lora: LoraSpec | dict | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> dict:
    """Write a fresh, untrained adapter folder (it computes exactly what the base does)."""
    from tuning.engine.fsutil import atomic_dir
    from tuning.engine.loading import load_base

    spec = LoraSpec.from_dict(lora) if not isinstance(lora, LoraSpec) else lora
    model, _ = load_base(source, cache_dir=cache_dir, device="cpu")
    peft_model = attach_lora(model, spec, seed=seed)
    with atomic_dir(output_dir) as staging:
        peft_model.save_pretrained(staging)
        write_metadata(
            staging,
            {
                "kind": "lora",
                "job": "new",
                "base_source": str(source),
                "base_fingerprint": base_fingerprint(source),
                "parent_adapter": None,
                "lora": spec.to_dict(),
                "hyperparameters": {"seed": seed},
            },
        )
    return {"output_dir": str(output_dir), "lora": spec.to_dict()}


@contextlib.contextmanager
def active_adapter(model: Any, name: str | None) -> Iterator[Any]:
    """Run ``model`` with one named adapter active, or with adapters off when ``name`` is None."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        if name is not None:
            raise ValueError(f"model has no adapters, cannot activate {name!r}")
        yield model
        return
    if name is None:
        with model.disable_adapter():
            yield model
        return
    previous = model.active_adapter
    model.set_adapter(name)
    try:
        yield model
    finally:
        model.set_adapter(previous)
