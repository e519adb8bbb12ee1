"""/metrics under gunicorn with several processes: every process's requests are counted.

Each gunicorn worker process counts the requests it answers; a scrape lands on one of them. With
PROMETHEUS_MULTIPROC_DIR (as docker-compose.yml sets it) the counts are shared through files,
so the scrape reports all of them whichever process answers it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workers.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str, str]:
    # A new connection per request, so gunicorn's processes take turns answering.
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (a local URL)
        return response.status, response.headers.get("X-Request-ID", ""), response.read().decode()


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "PREFLOOP_", "TEST_DATABASE", "METRICS_", "PROMETHEUS_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "PREFLOOP_VAR_DIR": str(tmp_path / "var"),
            "CELERY_BROKER_DIR": str(tmp_path / "broker"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        }
    )
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115  (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(f"{base}/healthz")
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                log.close()
                pytest.fail(f"gunicorn did not start:\n{(tmp_path / 'gunicorn.log').read_text()[-3000:]}")
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "prefloop_http_requests_total" and sample.labels.get("view") == "healthz":
                return sample.value
    return 0.0


def test_requests_answered_by_every_gunicorn_process_add_up(gunicorn):
    _, _, before = _get(f"{gunicorn}/metrics")
    ids = set()
    for _ in range(12):
        status, request_id, _body = _get(f"{gunicorn}/healthz")
        assert status == 200
        ids.add(request_id)
    assert len(ids) == 12  # each request got an id of its own
    counts = set()
    for _ in range(4):  # several scrapes, likely answered by different processes: all agree
        _, _, text = _get(f"{gunicorn}/metrics")
        counts.add(_healthz_count(text) - _healthz_count(before))
    assert counts == {12.0}
