"""Log lines carry the request id and the job id, as JSON when LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.logging import ContextFilter, JsonFormatter, job_context

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import django
django.setup()
from django.test import Client
Client().get("/healthz", HTTP_X_REQUEST_ID="req-from-proxy-1")
Client().get("/login/")
"""


def _run_site(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "PREFLOOP_", "TEST_DATABASE", "LOG_"))}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ALLOWED_HOSTS": "testserver",
            "PREFLOOP_VAR_DIR": str(tmp_path / "var"),
            "CELERY_BROKER_DIR": str(tmp_path / "broker"),
            **env,
        }
    )
    return subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


def test_json_logs_are_one_object_per_line_with_the_request_id(tmp_path):
    done = _run_site(tmp_path, LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON, or this raises
    access = [e for e in entries if e["logger"] == "prefloop.request"]
    health = next(e for e in access if e["path"] == "/healthz")
    assert health["request_id"] == "req-from-proxy-1"
    assert health["status"] == 200 and health["method"] == "GET" and health["view"] == "healthz"
    login = next(e for e in access if e["path"] == "/login/")
    assert login["level"] == "INFO" and len(login["request_id"]) == 32  # a fresh id of our own
    assert {"time", "level", "logger", "message"} <= set(login)


def test_plain_logs_put_the_ids_in_brackets(tmp_path):
    done = _run_site(tmp_path, LOG_FORMAT="plain")
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stderr.splitlines() if "GET /login/" in line)
    assert "prefloop.request [request=" in line and not line.startswith("{")


def test_an_unknown_log_format_stops_the_start(tmp_path):
    done = _run_site(tmp_path, LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be plain or json, not 'xml'" in done.stderr


@pytest.mark.django_db
def test_the_response_carries_the_request_id_and_a_bad_one_is_replaced(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.x")
    assert kept["X-Request-ID"] == "abc-123.x"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="evil\" injected=1 " + "x" * 300)
    assert replaced["X-Request-ID"] != "" and "evil" not in replaced["X-Request-ID"]
    assert len(replaced["X-Request-ID"]) == 32
    fresh = client.get("/healthz")
    assert len(fresh["X-Request-ID"]) == 32 and fresh["X-Request-ID"] != replaced["X-Request-ID"]


def _capture() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    return handler, stream


@pytest.mark.django_db(transaction=True)
def test_a_worker_task_tags_its_log_lines_with_the_job_id(project):
    """The real `job_run` task, applied in this process: Celery's task signals set the id."""
    from tuning.models import BaseModel, Job
    from workers.tasks import job_run

    job = Job.objects.create(kind="dpo", state="succeeded", project=project, base_model=BaseModel.objects.create(name="m", source="/x"))
    handler, stream = _capture()
    logger = logging.getLogger("tuning.services.runner")
    logger.addHandler(handler)
    try:
        assert job_run.apply(args=[job.pk]).get() == "skipped"
        logger.info("after the task")
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    inside = [e for e in entries if "nothing to do" in e["message"]]
    assert inside and all(e["job_id"] == job.pk for e in inside)
    after = next(e for e in entries if e["message"] == "after the task")
    assert "job_id" not in after


def test_job_context_nests_and_extras_become_fields():
    handler, stream = _capture()
    logger = logging.getLogger("prefloop.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with job_context(7):
            logger.warning("outer", extra={"step": 3})
            with job_context(8):
                logger.warning("inner")
        logger.warning("none")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    outer, inner, none, failed = (json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))
    assert (outer["job_id"], outer["step"]) == (7, 3)
    assert inner["job_id"] == 8 and "job_id" not in none
    assert "ValueError: boom" in failed["exception"]
