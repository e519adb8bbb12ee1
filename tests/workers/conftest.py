"""Real Celery workers for the worker tests, against a Redis of their own and the test database.

Each test starts `celery -A workers worker -Q gpu,default -c 1` as a subprocess, with the test
database's settings in its environment, and a redis-server on a free port that the test may stop
and start (never the shared one on 6379). Timings are short on purpose: a heartbeat every
second, a job counts as lost after 6 s without one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.tuning.fixtures import media, other_tiny_source, tiny_source, tuning_project  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
# Job timings the workers and this process share (see config/settings.py).
TIMINGS = {
    "PREFLOOP_JOB_HEARTBEAT_S": 1,
    "PREFLOOP_JOB_STALE_S": 6,
    "PREFLOOP_JOB_DISPATCH_S": 1,
    "PREFLOOP_JOB_REDISPATCH_S": 5,
    "PREFLOOP_JOB_PROGRESS_FLUSH_MS": 200,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Redis:
    """A redis-server of the test's own, without persistence (as in CI)."""

    def __init__(self, folder: Path):
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class Worker:
    """One `celery worker` process group; kill() is SIGKILL to all of it (a lost machine)."""

    def __init__(self, env: dict, log: Path):
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        handle = open(self.log, "ab")  # noqa: SIM115  (closed by stop/kill)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "gpu,default", "-c", "1",
             "--loglevel=INFO", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "--without-mingle",
             "--without-gossip"],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._handle = handle
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and not handle.closed:
            handle.close()

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no worker log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def database_url() -> str:
    """The test database (set up by pytest-django), as a URL the worker's settings read."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.fail("the worker tests need a file or server database (see tests/conftest.py)")
        return f"sqlite:///{name}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = Redis(tmp_path)
    server.start()
    yield server
    server.stop()


def make_worker_env(settings, folder: Path, *, broker_url: str, model_cache: Path | None = None) -> dict:
    """The environment of a worker process; this process's settings follow the same values."""
    model_cache = model_cache or folder / "models"
    for name, value in TIMINGS.items():
        setattr(settings, name, value)
    settings.CELERY_BROKER_URL = broker_url
    settings.CELERY_BROKER_DIR = folder / "broker"
    settings.MEDIA_ROOT = folder / "media"
    settings.PREFLOOP_JOB_DIR = folder / "jobs"
    settings.PREFLOOP_MODEL_CACHE = model_cache
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFLOOP_", "CELERY_", "DATABASE_", "REDIS_", "TEST_DATABASE", "PYTEST"))
    }
    env.update({name: str(value) for name, value in TIMINGS.items()})
    env.update(
        {
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "CELERY_BROKER_DIR": str(folder / "broker"),
            "MEDIA_ROOT": str(folder / "media"),
            "PREFLOOP_JOB_DIR": str(folder / "jobs"),
            "PREFLOOP_MODEL_CACHE": str(model_cache),
            "PREFLOOP_GPU_LOCK_DIR": str(folder),
            "PREFLOOP_VAR_DIR": str(folder / "var"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # Two cores at most, so a test worker does not starve the test process.
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


@pytest.fixture
def worker_env(tmp_path, redis_server, settings):
    return make_worker_env(settings, tmp_path, broker_url=redis_server.url)


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """start_worker() -> a running Worker; every one started is stopped at the end of the test."""
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(worker_env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def wait_for(predicate: Callable[[], object], *, timeout: float, what: str, workers: list[Worker] = (), every: float = 0.25):
    """Poll until `predicate()` is truthy; fail with the workers' logs when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    logs = "\n\n".join(f"--- {w.log.name} ---\n{w.tail()}" for w in workers)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
