"""Atomic output folders: a result appears whole (temporary folder, then rename) or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tuning.engine.errors import BadInput


def check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Refuse, before any work starts, an output folder that already holds something."""
    target = Path(output_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BadInput(f"output folder {target} already exists and is not empty; choose a new one")
    return target


@contextlib.contextmanager
def atomic_dir(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success rename it to ``output_dir``, else delete it.

    The temporary folder lives next to the target so the rename stays on one file system, where
    it is atomic: readers see either no folder or the complete one.
    """
    target = check_output_dir(output_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        make_readable(staging)
        if target.exists():
            # An empty folder the caller created in advance; rename() cannot replace it.
            target.rmdir()
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def make_readable(folder: Path) -> None:
    """Give a finished folder the usual permissions (mkdtemp creates it private to its owner).

    Workers and the web process may run as other users that read the same media folder.
    """
    os.chmod(folder, 0o755)  # noqa: S103 - world-readable on purpose, see above
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)  # noqa: S103
