"""Log records that say which request or job they belong to, as plain text or as JSON lines.

Two context variables hold the ids: the request-id middleware (config.middleware) sets
`request_id` for the length of a request, and a worker sets `job_id` while it runs a job. A
logging filter copies both onto every record, so any module's `logger.info(...)` carries them
without passing ids around. `LOG_FORMAT=json` (config/settings.py) picks JsonFormatter, one
JSON object per line for a log shipper; `plain` keeps the human-readable line.

Workers get the job id without a change to their tasks: Celery's task_prerun / task_postrun
signals set and clear it around every `job_run` (connected when this module is imported, which
logging's configuration does in every Django process, the worker's pool children included).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "context", "request_id", "job_id"}


class ContextFilter(logging.Filter):
    """Copies the current request and job ids onto the record (None when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.job_id = job_id.get()
        # For the plain format: " [request=... job=...]" or nothing.
        parts = []
        if record.request_id:
            parts.append(f"request={record.request_id}")
        if record.job_id is not None:
            parts.append(f"job={record.job_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, ids, exception, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        jid = getattr(record, "job_id", None)
        if rid:
            entry["request_id"] = rid
        if jid is not None:
            entry["job_id"] = jid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # default=str: an extra that JSON cannot hold is written as its text, never dropped.
        return json.dumps(entry, default=str, ensure_ascii=False)


@contextlib.contextmanager
def job_context(value: int | None) -> Iterator[None]:
    """Tag every record logged inside the block with this job id."""
    token = job_id.set(value)
    try:
        yield
    finally:
        job_id.reset(token)


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING dict of config/settings.py for `plain` or `json`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.logging.ContextFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s"},
            "json": {"()": "config.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
    }


# -- Celery: the job id of the task a worker is running ----------------------------------------

# Tasks whose first argument is a job id.
JOB_TASKS = ("job_run",)
_tokens: dict[str, contextvars.Token] = {}


def _job_id_of(task, args, kwargs) -> int | None:
    if getattr(task, "name", None) not in JOB_TASKS:
        return None
    value = (kwargs or {}).get("job_id", args[0] if args else None)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _on_task_prerun(task_id=None, task=None, args=None, kwargs=None, **_):
    value = _job_id_of(task, args, kwargs)
    if value is not None and task_id:
        _tokens[task_id] = job_id.set(value)


def _on_task_postrun(task_id=None, **_):
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        job_id.reset(token)


def _connect_celery() -> None:
    try:
        from celery.signals import task_postrun, task_prerun
    except ImportError:  # a process without Celery has no tasks to tag
        return
    task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="prefloop-job-id-prerun")
    task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="prefloop-job-id-postrun")


_connect_celery()
