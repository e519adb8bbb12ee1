"""/healthz answers 200 only when the database and the broker both answer, else 503 with why.

Each case runs the site in a process of its own, configured the way an operator would (through
the environment), against a real database file, a real broker, or an address where nothing
listens: the health check's whole point is what it does when something is really down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": json.loads(response.content)}))
"""


def _closed_port() -> int:
    """A port nothing listens on (bound, read, released: a connection to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthz(tmp_path: Path, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "PREFLOOP_", "TEST_DATABASE"))}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ALLOWED_HOSTS": "testserver",
            "PREFLOOP_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        }
    )
    base.update(env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_healthy_with_a_database_and_the_embedded_broker(tmp_path):
    answer = _healthz(tmp_path)
    assert answer == {"status": 200, "body": {"status": "ok"}}


def test_healthy_with_redis(tmp_path, redis_server):
    answer = _healthz(tmp_path, CELERY_BROKER_URL=redis_server.url)
    assert answer == {"status": 200, "body": {"status": "ok"}}


def test_database_down_is_503_naming_the_database(tmp_path):
    port = _closed_port()
    answer = _healthz(tmp_path, DATABASE_URL=f"postgres://prefloop@127.0.0.1:{port}/prefloop")
    assert answer["status"] == 503
    assert answer["body"]["status"] == "unhealthy"
    assert set(answer["body"]["problems"]) == {"database"}
    assert str(port) in answer["body"]["problems"]["database"]


def test_broker_down_is_503_naming_the_broker(tmp_path):
    answer = _healthz(tmp_path, CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    assert answer["status"] == 503
    assert set(answer["body"]["problems"]) == {"broker"}
    assert answer["body"]["problems"]["broker"]


def test_both_down_names_both(tmp_path):
    answer = _healthz(
        tmp_path,
        DATABASE_URL=f"postgres://prefloop@127.0.0.1:{_closed_port()}/prefloop",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0",
    )
    assert answer["status"] == 503
    assert set(answer["body"]["problems"]) == {"database", "broker"}


@pytest.mark.django_db
def test_healthz_is_never_cached_and_refuses_writes(client):
    response = client.get("/healthz")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert client.post("/healthz").status_code == 405
