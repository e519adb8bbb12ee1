"""The Celery app, configured from Django settings.

Queues: `gpu` for training, generation and evaluation (one job per worker, acks late, prefetch
1) and `default` for light work. Job state lives in the database; Celery only carries job ids,
and a message delivered twice is harmless (tasks claim their job row with a conditional UPDATE).
Broker: Redis in production and CI; Kombu's `filesystem://` transport under var/broker for the
demo, so one command runs web and worker without Redis.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("prefloop")

# Task name -> queue. Task names are the names of the services they call.
ROUTES = {"job_run": {"queue": "gpu"}, "jobs_maintain": {"queue": "default"}}


def transport_options(broker: str) -> dict:
    """Kombu transport options for a broker URL (also used for one-off connections)."""
    from django.conf import settings

    if broker.startswith(("redis://", "rediss://")):
        return {
            # Redis redelivers an unacknowledged message after this long; it must outlast the
            # longest job, or a running job's message would be handed to a second worker.
            "visibility_timeout": settings.PREFLOOP_JOB_TIME_LIMIT_S + 3600,
            "socket_connect_timeout": 4,
            "socket_timeout": 30,
        }
    if broker.startswith("filesystem://"):
        # The embedded broker: messages are files in one folder that the web process and
        # the worker share.
        folder = settings.CELERY_BROKER_DIR
        (folder / "queue").mkdir(parents=True, exist_ok=True)
        (folder / "processed").mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # Exchange tables (remote control, broadcast) live beside the queue, not in the cwd.
            "control_folder": str(folder / "control"),
        }
    return {}


def _configure(app: Celery) -> None:
    from django.conf import settings

    broker = settings.CELERY_BROKER_URL
    time_limit = settings.PREFLOOP_JOB_TIME_LIMIT_S
    conf = {
        "broker_url": broker,
        "broker_transport_options": transport_options(broker),
        "task_ignore_result": True,
        "task_default_queue": "default",
        "task_queues": [Queue("default"), Queue("gpu")],
        "task_routes": ROUTES,
        # A job's message is acknowledged only when the task returns, and a worker takes one
        # message at a time: a long GPU job never holds a second one hostage.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,
        # The hard limit kills the process (the reaper then sees the missing heartbeat); the
        # soft limit, a minute earlier, lets the job fail with a message.
        "task_time_limit": time_limit,
        "task_soft_time_limit": max(time_limit - 60, 1),
        # A broker blip must not kill a training run, and the worker keeps reconnecting for as
        # long as the broker is away (the database keeps the queued jobs meanwhile).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": 4,
        "worker_hijack_root_logger": False,
    }
    app.conf.update(conf)


_configure(app)
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
