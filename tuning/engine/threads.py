"""Torch's CPU thread count from the cores this process may actually use.

``os.cpu_count()`` (and torch's default) counts the host's cores, not the ones this process gets:
a container limited to 2 CPUs on a 64-core host would start 64 threads that fight over 2 cores,
and a process pinned to some cores (``taskset``, a CPU set) would oversubscribe those. Both limits
are read here: the CPU affinity mask (``os.sched_getaffinity``) and the cgroup CPU quota (v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), the smaller wins, and a fractional
quota rounds down (1.5 CPUs -> 1 thread: a thread that waits for its share of a core holds up
every other thread at the next barrier).

The thread count is chosen, in this order, by:

1. ``PREFLOOP_TORCH_THREADS`` (a whole number >= 1): e.g. 1 on a box that other work keeps busy,
   where one thread was measured about 3x faster than two on 2 cores;
2. ``OMP_NUM_THREADS`` when set: torch already follows it, and it is left alone;
3. the usable cores, as above.

No Django here; torch is imported only when the count is applied.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

from tuning.engine.errors import BadInput

logger = logging.getLogger(__name__)

OVERRIDE_ENV = "PREFLOOP_TORCH_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroups(self_cgroup: Path) -> dict[str, str]:
    """controller list ("" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    text = _read(self_cgroup) or ""
    found = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            found[parts[1]] = parts[2]
    return found


def _candidate_dirs(base: Path, own: str | None) -> list[Path]:
    """The process's own cgroup folder and each parent up to ``base``, then ``base`` itself.

    Inside a container the cgroup file system is usually mounted at the container's own cgroup,
    so the path named in /proc/self/cgroup does not exist under it; ``base`` is then the one.
    """
    dirs = []
    if own and own.strip("/"):
        folder = base / own.strip("/")
        while folder != base and base in folder.parents:
            dirs.append(folder)
            folder = folder.parent
    dirs.append(base)
    return dirs


def _quota_v2(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        quota_us, period_us = int(quota or ""), int(period or "")
    except ValueError:
        return None
    # -1 means no quota.
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT, self_cgroup: Path | str = SELF_CGROUP) -> float | None:
    """CPUs this process's cgroup quota allows (e.g. 1.5), or None where there is no quota.

    A nested cgroup is bounded by its parents too, so the smallest quota on the way up counts.
    """
    root, own = Path(root), _own_cgroups(Path(self_cgroup))
    limits: list[float] = []
    if (root / "cgroup.controllers").exists() or (root / "cpu.max").exists():
        for folder in _candidate_dirs(root, own.get("")):
            limit = _quota_v2(folder)
            if limit is not None:
                limits.append(limit)
    else:
        own_v1 = next((path for names, path in own.items() if "cpu" in names.split(",")), None)
        for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = root / mount
            if base.is_dir():
                for folder in _candidate_dirs(base, own_v1):
                    limit = _quota_v1(folder)
                    if limit is not None:
                        limits.append(limit)
                break
    return min(limits) if limits else None


def affinity_cores() -> int:
    """Cores in this process's CPU affinity mask (all of the host's where the OS has no masks)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def usable_cores(
    *, root: Path | str = CGROUP_ROOT, self_cgroup: Path | str = SELF_CGROUP, affinity: int | None = None
) -> int:
    """The smaller of the affinity mask and the cgroup quota (rounded down), at least 1."""
    cores = affinity if affinity is not None else affinity_cores()
    limit = cgroup_cpu_limit(root, self_cgroup)
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def chosen_threads(
    *,
    environ: Mapping[str, str] | None = None,
    root: Path | str = CGROUP_ROOT,
    self_cgroup: Path | str = SELF_CGROUP,
    affinity: int | None = None,
) -> int | None:
    """The thread count to set, or None to leave torch's own (OMP_NUM_THREADS is set)."""
    environ = os.environ if environ is None else environ
    override = environ.get(OVERRIDE_ENV, "").strip()
    if override:
        try:
            threads = int(override)
        except ValueError:
            threads = 0
        if threads < 1:
            raise BadInput(f"{OVERRIDE_ENV} must be a whole number >= 1, got {override!r}")
        return threads
    if environ.get("OMP_NUM_THREADS", "").strip():
        return None
    return usable_cores(root=root, self_cgroup=self_cgroup, affinity=affinity)


def configure_torch_threads(*, environ: Mapping[str, str] | None = None) -> int:
    """Set torch's intra-op thread count (see the module docstring); returns the count in use.

    Cheap and idempotent: the engine calls it each time it loads a model.
    """
    import torch

    threads = chosen_threads(environ=environ)
    if threads is not None and torch.get_num_threads() != threads:
        logger.info("torch CPU threads: %d (was %d)", threads, torch.get_num_threads())
        torch.set_num_threads(threads)
    return torch.get_num_threads()
