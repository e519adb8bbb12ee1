"""The adapter registry: registering finished adapters, promoting them, rolling back, reading them.

An adapter is registered only whole. The engine writes its output into a staging folder and
renames it when complete; here the folder is checked (config, weights, metadata, the right base),
copied into Django's storage under a temporary name and renamed (or, on remote storage, uploaded
file by file), and only then is the Adapter row created: the row is the commit point, so a crash
at any moment leaves at worst an unregistered folder, never a registered half-adapter.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from prefs.models import Project
from tuning.models import Adapter, AdapterPromotion, BaseModel

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
METADATA_FILE = "prefloop.json"


class AdapterError(Exception):
    """An adapter that cannot be registered, promoted or read, with the reason."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def adapter_folder_check(folder: Path, *, base_model: BaseModel | None = None) -> dict:
    """The folder's metadata if it holds a complete adapter (of `base_model`); else AdapterError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AdapterError(f"adapter folder {folder} does not exist")
    if folder.name.startswith(".") or ".partial-" in folder.name:
        raise AdapterError(f"{folder} is a staging folder, not a finished adapter")
    if not (folder / "adapter_config.json").is_file():
        raise AdapterError(f"{folder} holds no adapter_config.json")
    weights = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights or all((folder / name).stat().st_size == 0 for name in weights):
        raise AdapterError(f"{folder} holds no adapter weights ({' or '.join(WEIGHT_FILES)})")
    metadata: dict = {}
    if (folder / METADATA_FILE).is_file():
        try:
            metadata = json.loads((folder / METADATA_FILE).read_text())
        except json.JSONDecodeError as exc:
            raise AdapterError(f"{folder / METADATA_FILE} is not valid JSON: {exc}") from exc
    if base_model is not None and metadata.get("base_fingerprint"):
        from tuning.engine.sources import base_fingerprint

        expected = base_fingerprint(base_model.source)
        if metadata["base_fingerprint"] != expected:
            raise AdapterError(
                f"{folder} was trained on another base model ({metadata.get('base_source')}), "
                f"not on {base_model.name}"
            )
    return metadata


def _store(folder: Path, name: str) -> tuple[str, int]:
    """Copy a finished folder into storage as a whole; returns (storage path, bytes)."""
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    try:
        final = Path(default_storage.path(name))
    except NotImplementedError:
        final = None
    if final is not None:
        # Local storage: copy under a hidden name, then one rename makes it appear.
        staging = None
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
            shutil.copytree(folder, staging, dirs_exist_ok=True)
            # mkdtemp makes the folder private; the web process may run as another user.
            os.chmod(staging, 0o755)  # noqa: S103
            os.rename(staging, final)
        except OSError as exc:
            raise AdapterError(_storage_problem(exc, final.parent)) from exc
        finally:
            if staging is not None and staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return name, size
    # Remote storage has no rename; the row created afterwards is what makes it visible.
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            default_storage.save(f"{name}/{path.relative_to(folder).as_posix()}", File(fh))
    return name, size


# What a person can do about the usual reasons a write into storage fails.
_STORAGE_HINTS = {
    errno.ENOSPC: "the artifact folder is full",
    errno.EDQUOT: "the artifact folder is over its quota",
    errno.EROFS: "the artifact folder is read-only",
    errno.EACCES: "the worker may not write to the artifact folder",
    errno.EPERM: "the worker may not write to the artifact folder",
}


def _storage_problem(exc: OSError, folder: Path) -> str:
    """One sentence for a failed copy; copytree reports one error per file, the first says why."""
    cause = exc
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list) and exc.args[0]:
        reason = str(exc.args[0][0][2])
        for code, hint in _STORAGE_HINTS.items():
            if os.strerror(code) in reason:
                return f"Could not store the adapter in {folder}: {hint} ({os.strerror(code)}); nothing was registered."
        return f"Could not store the adapter in {folder}: {reason}; nothing was registered."
    hint = _STORAGE_HINTS.get(cause.errno or 0)
    what = f"{hint} ({cause.strerror})" if hint else (cause.strerror or str(cause))
    return f"Could not store the adapter in {folder}: {what}; nothing was registered."


def _unstore(name: str) -> None:
    try:
        shutil.rmtree(default_storage.path(name), ignore_errors=True)
    except NotImplementedError:
        dirs, files = default_storage.listdir(name)
        for file in files:
            default_storage.delete(f"{name}/{file}")


def adapter_register(
    *,
    folder: Path,
    base_model: BaseModel,
    project: Project | None,
    name: str,
    kind: str = Adapter.Kind.POLICY,
    parent: Adapter | None = None,
    job=None,
    preference_set=None,
    before_commit=None,
) -> Adapter:
    """Check a finished adapter folder, store it, and create its row (the commit point).

    `before_commit(adapter)` runs inside the row's transaction; if it raises, the row is not
    created and the stored copy is removed (a worker that lost its job registers nothing).
    """
    metadata = adapter_folder_check(folder, base_model=base_model)
    stored_name = f"adapters/{base_model.pk}/{uuid.uuid4().hex}"
    path, size = _store(Path(folder), stored_name)
    try:
        with transaction.atomic():
            adapter = Adapter.objects.create(
                base_model=base_model,
                project=project,
                name=name[:200],
                kind=kind,
                parent=parent,
                job=job,
                preference_set=preference_set,
                path=path,
                metadata=metadata,
                size_bytes=size,
            )
            if before_commit is not None:
                before_commit(adapter)
    except BaseException:
        _unstore(path)
        raise
    return adapter


def adapter_local_dir(adapter: Adapter | None) -> Path | None:
    """A local folder holding the adapter's files (downloaded once from remote storage)."""
    if adapter is None:
        return None
    try:
        return Path(default_storage.path(adapter.path))
    except NotImplementedError:
        pass
    target = Path(settings.PREFLOOP_MODEL_CACHE) / "adapters" / str(adapter.pk)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        _download(adapter.path, staging)
        os.rename(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _download(prefix: str, into: Path) -> None:
    dirs, files = default_storage.listdir(prefix)
    for file in files:
        with default_storage.open(f"{prefix}/{file}", "rb") as src, open(into / file, "wb") as dst:
            shutil.copyfileobj(src, dst)
    for sub in dirs:
        (into / sub).mkdir()
        _download(f"{prefix}/{sub}", into / sub)


def adapter_zip(adapter: Adapter):
    """A temporary file holding the adapter's folder as a zip (for download)."""
    folder = adapter_local_dir(adapter)
    if folder is None or not folder.is_dir():
        raise AdapterError(f"adapter {adapter.pk}'s files are missing from storage", status=404)
    # Returned open: the caller streams it and closes it (FileResponse does).
    spooled = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115
    with zipfile.ZipFile(spooled, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, arcname=f"{adapter_slug(adapter)}/{path.relative_to(folder).as_posix()}")
    spooled.seek(0)
    return spooled


def adapter_slug(adapter: Adapter) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in adapter.name)
    return f"adapter-{adapter.pk}-{safe}".strip("-")


def adapter_next_name(*, project: Project | None, kind: str) -> str:
    """"v3-dpo": the project's adapter versions are numbered in order of registration."""
    count = Adapter.objects.filter(project=project).count() if project is not None else 0
    return f"v{count + 1}-{kind.replace('_', '-')}"


# -- promotion and rollback ------------------------------------------------------------------


def adapter_promote(*, project: Project, adapter: Adapter | None, by=None, is_rollback: bool = False) -> AdapterPromotion:
    """Make `adapter` (None: the bare base model) the project's active one, recording the change."""
    if adapter is not None:
        if adapter.kind != Adapter.Kind.POLICY:
            raise AdapterError(f"{adapter.name} is a reward model; only policy adapters can be active")
        if project.base_model_id is not None and adapter.base_model_id != project.base_model_id:
            raise AdapterError(
                f"{adapter.name} belongs to base model {adapter.base_model.name}, "
                f"not to this project's {project.base_model.name}"
            )
        if adapter.project_id not in (None, project.pk):
            raise AdapterError(f"{adapter.name} belongs to another project")
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        previous_id = locked.active_adapter_id
        if previous_id == (adapter.pk if adapter else None):
            raise AdapterError(
                f"{adapter.name if adapter else 'The bare base model'} is already active", status=409
            )
        Project.objects.filter(pk=project.pk).update(active_adapter=adapter)
        promotion = AdapterPromotion.objects.create(
            project=project,
            adapter=adapter,
            previous_id=previous_id,
            is_rollback=is_rollback,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
    project.active_adapter = adapter
    return promotion


def adapter_rollback(*, project: Project, by=None) -> AdapterPromotion:
    """Go back to the adapter that was active before the current one."""
    last = AdapterPromotion.objects.filter(project=project).order_by("-id").first()
    if last is None:
        raise AdapterError("Nothing to roll back: the active adapter was never changed here", status=409)
    previous = Adapter.objects.filter(pk=last.previous_id).first() if last.previous_id else None
    return adapter_promote(project=project, adapter=previous, by=by, is_rollback=True)


# -- reads -----------------------------------------------------------------------------------


def adapter_lineage(*, base_model: BaseModel | None = None, project: Project | None = None) -> list[tuple[Adapter, int]]:
    """Adapters as a depth-first tree: [(adapter, depth)], children after their parent."""
    adapters = Adapter.objects.select_related("base_model", "project", "job", "preference_set")
    if base_model is not None:
        adapters = adapters.filter(base_model=base_model)
    if project is not None:
        adapters = adapters.filter(project=project)
    by_id = {a.pk: a for a in adapters.order_by("id")}
    children: dict[int | None, list[Adapter]] = {}
    for adapter in by_id.values():
        parent = adapter.parent_id if adapter.parent_id in by_id else None
        children.setdefault(parent, []).append(adapter)
    out: list[tuple[Adapter, int]] = []
    stack = [(a, 0) for a in reversed(children.get(None, []))]
    while stack:
        adapter, depth = stack.pop()
        out.append((adapter, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(adapter.pk, [])))
    return out


def adapter_ancestors(adapter: Adapter) -> list[Adapter]:
    """The adapter's parents, nearest first (guarded against a cycle)."""
    chain, seen = [], {adapter.pk}
    current = adapter.parent
    while current is not None and current.pk not in seen:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return chain
