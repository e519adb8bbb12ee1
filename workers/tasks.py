"""Celery tasks: thin doors onto services. A task takes an id, and its name is the service's.

Imports of Django models and of the engine happen inside the tasks, so importing this module
(which the Celery app does at start-up, before Django is set up) stays cheap.
"""

from __future__ import annotations

from workers.celery import app
from workers.maintenance import gpu_slot, start_maintenance  # noqa: F401  (connects signals)


@app.task(name="job_run", acks_late=True, reject_on_worker_lost=True)
def job_run(job_id: int) -> str:
    """Run one job. One GPU job per worker at a time: the slot is held while it runs."""
    from tuning.services.runner import job_run as run

    with gpu_slot():
        return run(job_id=job_id)


@app.task(name="jobs_maintain")
def jobs_maintain() -> dict:
    """Reap stale jobs and send queued ones the broker never got. Every worker also does this
    on a timer; the task is there for a deployment that prefers Celery beat."""
    from workers.maintenance import jobs_maintain as maintain

    return maintain()
