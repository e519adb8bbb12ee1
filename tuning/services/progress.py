"""The bridge between the engine's progress callback and the job's row and events.

The engine calls back at every optimisation step. Writing each call to the database would tie
training speed to the database, so events are buffered and written in one transaction at most
every PREFLOOP_JOB_PROGRESS_FLUSH_MS (and at every change of phase and at the end). Only the
cancel check runs at every step, as one primary-key read, so a cancel stops the run after the
step in progress. A thread writes the heartbeat on its own clock, so a long model load or a
slow step never looks like a dead worker; it dies with the process, which is the point.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from tuning.models import Job, JobEvent
from tuning.services.jobs import job_heartbeat, job_progress_write

logger = logging.getLogger(__name__)

# Keys of an engine event that are bookkeeping, not metrics.
_BOOKKEEPING = {"phase", "step", "total_steps", "progress", "eta_s", "message"}


class _LogCapture(logging.Handler):
    """Sends the engine's log records to the job's log."""

    def __init__(self, reporter: JobReporter):
        super().__init__(level=logging.INFO)
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.reporter.log(f"{record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a log line must never break a training run
            self.handleError(record)


class JobReporter:
    """Progress of one run of one job. Use as a context manager around the run."""

    def __init__(self, job: Job, *, flush_s: float | None = None, heartbeat_s: float | None = None):
        self.job = job
        self.flush_s = (
            settings.PREFLOOP_JOB_PROGRESS_FLUSH_MS / 1000.0 if flush_s is None else flush_s
        )
        self.heartbeat_s = settings.PREFLOOP_JOB_HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self._lock = threading.Lock()
        # Held across a whole flush, so two threads' batches reach the table in order.
        self._write_lock = threading.Lock()
        self._events: list[JobEvent] = []
        self._logs: list[str] = []
        self._fields: dict = {}
        self._last_flush = 0.0
        self._phase = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._capture = _LogCapture(self)
        self._started = time.monotonic()
        # Where the current engine call sits in the job: progress maps into [start, end].
        self._range = (0.0, 1.0)
        self._phases: dict[str, tuple[float, float]] = {}
        self._progress = 0.0
        # Seconds this run spent on bookkeeping (callbacks, database writes, heartbeats): what the
        # job costs on top of the engine's own work (benchmarks/job_overhead.py reports it).
        self.spent_s = 0.0
        self.cancel_requested = False
        # The job was taken away (reaped as stale, or finished by someone else): stop, write nothing.
        self.lost = False

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> JobReporter:
        for name in ("tuning.engine", "tuning.services"):
            logging.getLogger(name).addHandler(self._capture)
        self._thread = threading.Thread(target=self._beat, name=f"job-{self.job.pk}-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.heartbeat_s, 1) + 30)
        for name in ("tuning.engine", "tuning.services"):
            logging.getLogger(name).removeHandler(self._capture)
        self.flush()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.heartbeat_s):
                started = time.perf_counter()
                try:
                    owned, cancel = job_heartbeat(job=self.job)
                except Exception as exc:  # a database hiccup: try again at the next beat
                    logger.warning("job %s: heartbeat failed: %s", self.job.pk, exc)
                    close_old_connections()
                    continue
                if not owned:
                    self.lost = True
                    return
                self.cancel_requested = self.cancel_requested or cancel
                # Log lines written while the engine is busy between callbacks (loading a
                # model, a long generation batch) still reach the page.
                if time.monotonic() - self._last_flush >= self.flush_s:
                    self.flush()
                self.spent_s += time.perf_counter() - started
        finally:
            connections.close_all()

    # -- what the run reports ---------------------------------------------------------------
    def stage(self, start: float, end: float, phases: dict[str, tuple[float, float]] | None = None) -> None:
        """The next engine call covers [start, end] of the job; `phases` splits that range
        among the engine's phases as fractions of it (e.g. {"prepare": (0, .1), "train": (.1, 1)})."""
        self._range = (start, end)
        self._phases = phases or {}

    def log(self, line: str) -> None:
        with self._lock:
            self._logs.append(line)
            self._events.append(self._event(JobEvent.Kind.LOG, {"message": line, "phase": self._phase}))

    def _event(self, kind: str, data: dict) -> JobEvent:
        return JobEvent(
            job_id=self.job.pk, attempt=self.job.attempts, kind=kind, data=data, created_at=timezone.now()
        )

    def _overall(self, phase: str, fraction: float) -> float:
        start, end = self._range
        sub = self._phases.get(phase)
        if sub is not None:
            start, end = start + (end - start) * sub[0], start + (end - start) * sub[1]
        return start + (end - start) * min(max(fraction, 0.0), 1.0)

    def callback(self, event: dict) -> bool:
        """The engine's progress callback: True asks it to stop at the end of this step."""
        started = time.perf_counter()
        try:
            return self._callback(event)
        finally:
            self.spent_s += time.perf_counter() - started

    def _callback(self, event: dict) -> bool:
        phase = str(event.get("phase") or "")
        fraction = event.get("progress")
        with self._lock:
            phase_changed = phase != self._phase
            self._phase = phase
            if isinstance(fraction, int | float) and math.isfinite(fraction):
                self._progress = max(self._progress, self._overall(phase, float(fraction)))
            fields = {"phase": phase[:32], "progress": round(self._progress, 6)}
            if isinstance(event.get("step"), int):
                fields["step"] = event["step"]
            if isinstance(event.get("total_steps"), int):
                fields["total_steps"] = event["total_steps"]
            fields["eta_s"] = self._eta(event)
            self._fields.update(fields)
            message = event.get("message")
            if message:
                line = f"[{phase}] {message}" if phase else str(message)
                self._logs.append(line)
                self._events.append(self._event(JobEvent.Kind.LOG, {"message": line, "phase": phase}))
            metrics = {k: v for k, v in event.items() if k not in _BOOKKEEPING and v is not None}
            if metrics:
                data = {"phase": phase, "step": event.get("step"), **metrics}
                self._events.append(self._event(JobEvent.Kind.METRICS, data))
            due = phase_changed or time.monotonic() - self._last_flush >= self.flush_s
        if due:
            self.flush()
        if not self.cancel_requested and not self.lost:
            # One primary-key read per step: what makes a cancel take effect after this step.
            self.cancel_requested = Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self.cancel_requested or self.lost

    def _eta(self, event: dict) -> float | None:
        # The engine's own estimate is best while the phase that dominates the job runs (its
        # single call spans the job); otherwise extrapolate the job's elapsed time.
        if self._range == (0.0, 1.0) and event.get("phase") == "train" and event.get("eta_s") is not None:
            return float(event["eta_s"])
        if self._progress < 0.02:
            return None
        elapsed = time.monotonic() - self._started
        phase = str(event.get("phase") or "")
        if event.get("eta_s") is not None and phase in self._phases:
            # What is left of this phase at the rate measured within it (a slow phase after a fast
            # one would otherwise be promised the fast one's pace), then the phases after it at
            # the job's measured seconds per share of the bar: their shares follow expected time.
            after = 1.0 - self._overall(phase, 1.0)
            return round(float(event["eta_s"]) + after * elapsed / self._progress, 1)
        return round(elapsed * (1.0 - self._progress) / self._progress, 1)

    def flush(self) -> None:
        with self._write_lock:
            with self._lock:
                events, self._events = self._events, []
                logs, self._logs = self._logs, []
                fields, self._fields = self._fields, {}
                self._last_flush = time.monotonic()
            if not (events or logs or fields) or self.lost:
                return
            try:
                if not job_progress_write(job=self.job, fields=fields, events=events, log_lines=logs):
                    self.lost = True
            except Exception as exc:  # keep training; the next flush carries the newer state
                logger.warning("job %s: progress write failed: %s", self.job.pk, exc)
                close_old_connections()

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def callback_for(self, start: float, end: float, phases=None) -> Callable[[dict], bool]:
        self.stage(start, end, phases)
        return self.callback
