"""A job's life in the database: dispatch (the outbox), claim, events, finish, cancel, reaping.

The database is the record; the broker only carries job ids. Each change of state is a
conditional UPDATE whose WHERE clause names the state (and, for a run, the attempt) it starts
from, so the web process, several workers and the reaper can race without two of them owning a
job or a finished job changing state again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from tuning.models import Job, JobEvent

logger = logging.getLogger(__name__)

# Every job runs through one Celery task; its name is the service it calls.
RUN_TASK = "job_run"
RUN_QUEUE = "gpu"
# Lines of log the job row keeps (the full log is in the job's LOG events).
LOG_TAIL_LINES = 200


class JobError(Exception):
    """A request about a job that cannot be honoured; `status` suits an HTTP answer."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


# -- events --------------------------------------------------------------------------------


def job_event_add(*, job_id: int, kind: str, data: dict, attempt: int = 0) -> JobEvent:
    return JobEvent.objects.create(
        job_id=job_id, attempt=attempt, kind=kind, data=data, created_at=timezone.now()
    )


def _state_event(job_id: int, state: str, attempt: int, **extra) -> None:
    job_event_add(job_id=job_id, kind=JobEvent.Kind.STATE, data={"state": state, **extra}, attempt=attempt)


def log_tail_append(tail: str, lines: list[str]) -> str:
    kept = (tail.splitlines() if tail else []) + lines
    return "\n".join(kept[-LOG_TAIL_LINES:])


# -- the outbox: getting queued jobs to the broker --------------------------------------------


def job_dispatch(*, job_id: int, now: datetime | None = None, older_than: datetime | None = None) -> bool:
    """Send a queued job's id to the broker; True when the broker took it.

    The dispatch is claimed first (dispatched_at set only if it still holds what we read), so two
    dispatchers do not both send; a failed send puts dispatched_at back to null for the next try.
    `older_than` lets the dispatcher resend a job whose earlier message was lost.
    """
    now = now or timezone.now()
    unsent = Q(dispatched_at__isnull=True)
    if older_than is not None:
        unsent |= Q(dispatched_at__lt=older_than)
    claimed = (
        Job.objects.filter(unsent, pk=job_id, state=Job.State.QUEUED)
        .update(dispatched_at=now, dispatch_count=F("dispatch_count") + 1)
    )
    if not claimed:
        return False
    try:
        _send(job_id)
    except Exception as exc:  # any broker or network error: the job stays for the dispatcher
        logger.warning("job %s: broker did not take it (%s); the dispatcher will resend", job_id, exc)
        Job.objects.filter(pk=job_id, dispatched_at=now).update(dispatched_at=None)
        return False
    return True


def job_queue(*, job_id: int) -> str:
    """The Celery queue of a job: its base model's entry in PREFLOOP_JOB_QUEUES, else `gpu`.

    Big models need big cards; workers that have them consume their own queue (docs/deploy.md).
    """
    name = Job.objects.filter(pk=job_id).values_list("base_model__name", flat=True).first()
    return settings.PREFLOOP_JOB_QUEUES.get(name, RUN_QUEUE)


def _send(job_id: int) -> None:
    from workers.celery import app, transport_options

    # A connection of its own with a short timeout: when the broker is down the launch request
    # must answer at once (the job is safe in the database), not hang in Celery's retry loop.
    url = settings.CELERY_BROKER_URL
    with app.connection_for_write(url, connect_timeout=3, transport_options=transport_options(url)) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=3)
        app.send_task(
            RUN_TASK,
            args=[job_id],
            queue=job_queue(job_id=job_id),
            connection=conn,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
        )


def job_dispatch_on_commit(job_id: int) -> None:
    transaction.on_commit(lambda: job_dispatch(job_id=job_id))


def jobs_dispatch_pending(*, now: datetime | None = None) -> int:
    """Send queued jobs the broker never took, and resend long-unclaimed ones. Returns sends."""
    now = now or timezone.now()
    sent = 0
    base = settings.PREFLOOP_JOB_REDISPATCH_S
    queued = Job.objects.filter(state=Job.State.QUEUED).order_by("id")
    for job_id, dispatched_at, count in queued.values_list("id", "dispatched_at", "dispatch_count"):
        if dispatched_at is None:
            sent += job_dispatch(job_id=job_id, now=now)
            continue
        # A message can be lost after the broker took it (a Redis restart without persistence).
        # Resending is harmless, so do it, but back off (doubling, at most 64x) so a long queue
        # behind a busy worker does not fill the broker with duplicates.
        wait = timedelta(seconds=base * 2 ** min(max(count - 1, 0), 6))
        if dispatched_at < now - wait:
            sent += job_dispatch(job_id=job_id, now=now, older_than=now - wait)
    return sent


# -- a worker's run of a job -------------------------------------------------------------------


def job_claim(*, job_id: int, worker: str, now: datetime | None = None) -> Job | None:
    """Take a queued job for this worker; None when it is not (or no longer) queued.

    This conditional UPDATE is what makes the task idempotent: a message delivered twice (a
    resend, a redelivery after a lost connection) finds the job already running or finished.
    """
    now = now or timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED, cancel_requested=False).update(
        state=Job.State.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        worker=worker[:200],
        error="",
        eta_s=None,
    )
    if not claimed:
        return None
    job = Job.objects.get(pk=job_id)
    _state_event(job.pk, Job.State.RUNNING, job.attempts, worker=worker)
    return job


def _owned(job: Job) -> Q:
    # A run may write only while the job is still running under its attempt number.
    return Q(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts)


def job_heartbeat(*, job: Job, now: datetime | None = None) -> tuple[bool, bool]:
    """Record that the run is alive -> (still owned, cancel requested)."""
    now = now or timezone.now()
    owned = Job.objects.filter(_owned(job)).update(heartbeat_at=now)
    if not owned:
        return False, False
    cancel = Job.objects.filter(pk=job.pk, cancel_requested=True).exists()
    return True, cancel


def job_progress_write(*, job: Job, fields: dict, events: list[JobEvent], log_lines: list[str]) -> bool:
    """Store a batch of progress (events, job fields, log tail) if the run still owns the job."""
    now = timezone.now()
    with transaction.atomic():
        updates = {"heartbeat_at": now, **fields}
        if log_lines:
            current = Job.objects.filter(pk=job.pk).values_list("log_tail", flat=True).first() or ""
            updates["log_tail"] = log_tail_append(current, log_lines)
        if not Job.objects.filter(_owned(job)).update(**updates):
            return False
        if events:
            JobEvent.objects.bulk_create(events)
    return True


def job_succeed(*, job: Job, result: dict, output_adapter=None, log_lines: list[str] | None = None) -> bool:
    now = timezone.now()
    updates = {
        "state": Job.State.SUCCEEDED,
        "finished_at": now,
        "progress": 1.0,
        "eta_s": 0.0,
        "result": result,
        "output_adapter": output_adapter,
    }
    with transaction.atomic():
        if log_lines:
            current = Job.objects.filter(pk=job.pk).values_list("log_tail", flat=True).first() or ""
            updates["log_tail"] = log_tail_append(current, log_lines)
        if not Job.objects.filter(_owned(job)).update(**updates):
            return False
        _state_event(job.pk, Job.State.SUCCEEDED, job.attempts)
    return True


def job_fail(*, job: Job, error: str, cancelled: bool = False, log_lines: list[str] | None = None) -> bool:
    state = Job.State.CANCELLED if cancelled else Job.State.FAILED
    updates = {"state": state, "finished_at": timezone.now(), "error": error[:4000], "eta_s": None}
    with transaction.atomic():
        if log_lines:
            current = Job.objects.filter(pk=job.pk).values_list("log_tail", flat=True).first() or ""
            updates["log_tail"] = log_tail_append(current, log_lines)
        if not Job.objects.filter(_owned(job)).update(**updates):
            return False
        _state_event(job.pk, state, job.attempts, error=error[:500])
    return True


# -- people and the reaper ---------------------------------------------------------------------


def job_cancel(*, job: Job, by=None) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next step."""
    if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED,
        finished_at=timezone.now(),
        cancel_requested=True,
        cancel_requested_at=timezone.now(),
        error="Cancelled before it started.",
    ):
        _state_event(job.pk, Job.State.CANCELLED, job.attempts, by=getattr(by, "username", None))
    elif Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        cancel_requested=True, cancel_requested_at=timezone.now()
    ):
        job_event_add(
            job_id=job.pk,
            kind=JobEvent.Kind.LOG,
            data={"message": f"Cancel requested by {getattr(by, 'username', 'someone')}."},
            attempt=job.attempts,
        )
    else:
        job.refresh_from_db()
        raise JobError(f"Job {job.pk} has already {job.state}; there is nothing to cancel.", status=409)
    job.refresh_from_db()
    return job


def job_reap_stale(*, now: datetime | None = None, stale_after_s: int | None = None) -> list[tuple[int, str]]:
    """Find running jobs whose worker stopped beating; retry them or fail them.

    A worker killed with SIGKILL (or an OOM kill, or a lost machine) cannot say so; its message
    may even have been acknowledged already. Only the missing heartbeat tells. A job with
    attempts left goes back to the queue (its run resumes from its last checkpoint); otherwise it
    fails with the reason. Returns [(job id, "requeued" | "failed")].
    """
    now = now or timezone.now()
    stale_after_s = settings.PREFLOOP_JOB_STALE_S if stale_after_s is None else stale_after_s
    cutoff = now - timedelta(seconds=stale_after_s)
    outcomes = []
    stale = Job.objects.filter(state=Job.State.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    for job in stale:
        last = job.heartbeat_at.isoformat(timespec="seconds") if job.heartbeat_at else "never"
        reason = f"Worker {job.worker or '?'} lost: no heartbeat since {last} (over {stale_after_s} s)."
        # The same conditions as the read, so a heartbeat that lands meanwhile wins.
        owned = Job.objects.filter(_owned(job), heartbeat_at=job.heartbeat_at)
        if job.attempts < job.max_attempts and not job.cancel_requested:
            if owned.update(
                state=Job.State.QUEUED,
                dispatched_at=None,
                error=reason,
                log_tail=log_tail_append(job.log_tail, [reason + " Retrying."]),
            ):
                _state_event(job.pk, Job.State.QUEUED, job.attempts, reason=reason, retry=True)
                outcomes.append((job.pk, "requeued"))
                job_dispatch_on_commit(job.pk)
        else:
            cancelled = job.cancel_requested
            if owned.update(
                state=Job.State.CANCELLED if cancelled else Job.State.FAILED,
                finished_at=now,
                error=reason,
                log_tail=log_tail_append(job.log_tail, [reason]),
            ):
                _state_event(
                    job.pk, Job.State.CANCELLED if cancelled else Job.State.FAILED, job.attempts,
                    reason=reason,
                )
                outcomes.append((job.pk, "failed"))
    return outcomes
