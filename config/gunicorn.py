"""gunicorn settings for production (`gunicorn -c config/gunicorn.py config.wsgi`).

Only what the metrics need lives here; bind address, workers and timeouts are flags in
docker-compose.yml. With PROMETHEUS_MULTIPROC_DIR set, each gunicorn worker writes its counters
to files in that folder: it is emptied when gunicorn starts (stale files from a previous run
would be counted again), and a worker that exits is marked dead so its live gauges go.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
