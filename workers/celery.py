"""The Celery app, configured from Django settings.

Queues: `gpu` for training and generation (one job per worker, acks late, prefetch 1) and
`default` for snapshots, exports and statistics. Job state lives in the database; Celery only
carries job ids.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prefloop")


def _configure(app: Celery) -> None:
    from django.conf import settings

    broker = settings.CELERY_BROKER_URL
    conf = {
        "broker_url": broker,
        "task_ignore_result": True,
        "task_default_queue": "default",
        "task_queues": [Queue("default"), Queue("gpu")],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "task_routes": {"workers.tasks.gpu.*": {"queue": "gpu"}},
    }
    if broker.startswith("filesystem://"):
        # The embedded broker: messages are files in one folder that the web process and
        # the worker share.
        folder = settings.CELERY_BROKER_DIR
        (folder / "queue").mkdir(parents=True, exist_ok=True)
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        }
    app.conf.update(conf)


_configure(app)
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
