"""What a worker does besides running tasks: the reaper and the outbox dispatcher.

Celery beat is not part of the demo, so the worker's main process runs both on a timer thread
from the moment it is ready: jobs whose worker died are noticed by their missing heartbeat, and
jobs queued while the broker was away are sent once it answers again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
from collections.abc import Iterator

from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger(__name__)

_stop = threading.Event()
_thread: threading.Thread | None = None


def jobs_maintain() -> dict:
    """Reap stale jobs, then send queued jobs the broker never got (or lost)."""
    from django.db import close_old_connections

    from tuning.services.jobs import job_reap_stale, jobs_dispatch_pending
    from tuning.services.rounds import rounds_train_ready

    close_old_connections()
    try:
        reaped = job_reap_stale()
        sent = jobs_dispatch_pending()
        trained = rounds_train_ready()
    finally:
        close_old_connections()
    if reaped or sent or trained:
        logger.info("maintenance: reaped %s, dispatched %s, rounds training %s", reaped, sent, trained)
    return {"reaped": reaped, "dispatched": sent, "rounds_trained": trained}


def _loop(interval_s: float) -> None:
    from django.db import connections

    try:
        while True:
            try:
                jobs_maintain()
            except Exception as exc:  # the database or broker is away: try again next round
                logger.warning("maintenance round failed: %s", exc)
            if _stop.wait(interval_s):
                return
    finally:
        connections.close_all()


def start_maintenance(interval_s: float | None = None) -> threading.Thread:
    global _thread
    from django.conf import settings

    if _thread is not None and _thread.is_alive():
        return _thread
    _stop.clear()
    interval = settings.PREFLOOP_JOB_DISPATCH_S if interval_s is None else interval_s
    _thread = threading.Thread(target=_loop, args=(interval,), name="prefloop-maintenance", daemon=True)
    _thread.start()
    return _thread


@worker_ready.connect
def _on_worker_ready(**_kwargs) -> None:
    start_maintenance()


@worker_shutdown.connect
def _on_worker_shutdown(**_kwargs) -> None:
    _stop.set()


@contextlib.contextmanager
def gpu_slot() -> Iterator[None]:
    """Hold this host's lock for its GPU(s) while a job runs.

    A worker runs with concurrency 1, so this only matters when someone starts it with more:
    a second job then waits here (still queued in the database) instead of sharing the GPU.
    The lock is per host and per CUDA_VISIBLE_DEVICES, so one worker per GPU works.
    """
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "-") or "none"
    folder = os.environ.get("PREFLOOP_GPU_LOCK_DIR") or tempfile.gettempdir()
    path = os.path.join(folder, f"prefloop-gpu-{devices}.lock")
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
