"""Every script in benchmarks/ still runs: its --smoke mode exits 0 and prints its JSON line last.

A smoke run goes through the script's whole path at tiny sizes (a tiny random model where the
script trains or generates), so a change that breaks a benchmark fails CI instead of the next
measuring run. The scripts run as subprocesses, two at a time (the suite's machine has two
cores; much of a smoke run is starting Python, Django and torch): about 80 CPU seconds in all.

The scripts that measure against PostgreSQL (review_path, export, soak) run when the tests do
(CI); import.py runs on whichever database the tests use. soak.py gets a redis-server of its
own. Each run's output lands in $PREFLOOP_ARTIFACTS_DIR/benchmarks (test-artifacts/ by default).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PREFLOOP_ARTIFACTS_DIR", ROOT / "test-artifacts")) / "benchmarks"
# A smoke run takes seconds to a minute; past this it hangs.
TIMEOUT_S = 600

# The keys each script's last line promises (its docstring, the README's benchmark table).
KEYS = {
    "capacity": {"models", "cpu", "tokens", "batch", "mfu"},
    "dpo_throughput": {"ratio", "ours_samples_per_s", "trl_samples_per_s", "seconds", "ours_losses", "trl_losses"},
    "efficacy": {
        "win_rate", "ci_low", "ci_high", "length_controlled_win_rate", "heldout_accuracy",
        "length_controlled_accuracy", "drift_kl", "train_seconds", "eval_seconds",
    },
    "export": {"rows_per_s", "peak_rss_mb", "rows", "seconds", "freeze_seconds"},
    "generation": {"ratio", "batched_tokens_per_s", "plain_tokens_per_s", "seconds"},
    "import": {"rows_per_s", "rows", "seconds", "created", "duplicates", "database"},
    "job_overhead": {"engine_step_s", "job_step_s", "difference_pct", "ratio", "bookkeeping_pct"},
    "review_path": {
        "judgments_per_s", "p50_ms", "p99_ms", "next_p99_ms", "judgment_p99_ms", "requests",
        "errors", "lost", "duplicates", "over_k",
    },
    "soak": {
        "judgments_per_s", "p50_ms", "p99_ms", "requests", "errors", "server_errors", "lost",
        "duplicates", "over_k", "train_steps_during_soak", "training_throughout",
    },
    "stats": {"seconds", "judgments", "resamples", "rank_correlation", "summary_seconds"},
}
ON_POSTGRESQL = {"review_path", "export", "soak"}
# Longest first, so the two lanes end at about the same time.
ORDER = ["soak", "efficacy", "job_overhead", "dpo_throughput", "capacity", "review_path", "export", "generation", "import", "stats"]


def _skip_reason(name: str) -> str | None:
    if name in ON_POSTGRESQL and connection.vendor != "postgresql":
        return f"{name}.py measures against PostgreSQL (CI runs this on PostgreSQL)"
    if name == "soak" and shutil.which("redis-server") is None:
        return "soak.py's worker needs Redis and redis-server is not installed"
    return None


def _admin_url() -> str:
    """The test database's server, at its maintenance database, where scripts make their own."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}{db.get('HOST') or '127.0.0.1'}{port}/postgres"


def _environment() -> dict:
    """This shell's environment without the suite's database, broker and job settings: each
    script sets up its own, as it does when run by hand."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "PREFLOOP_", "TEST_DATABASE", "PYTEST", "DJANGO_"))
    }
    # Two scripts run at once on two cores.
    env["OMP_NUM_THREADS"] = "1"
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    @property
    def output(self) -> str:
        return f"{self.stdout}\n--- stderr ---\n{self.stderr}"


def _run(name: str, extra: list[str], env: dict) -> Run:
    process = subprocess.Popen(
        [sys.executable, f"benchmarks/{name}.py", "--smoke", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGINT, not SIGKILL: the script's `finally` then stops its gunicorn or worker and
        # drops its database.
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        stderr += f"\n(stopped after {TIMEOUT_S} s)"
    run = Run(process.returncode, stdout, stderr)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.log").write_text(run.output)
    return run


@pytest.fixture(scope="module")
def smoke_runs(request, tmp_path_factory):
    """Starts the smoke runs this session selected, two at a time; {name: Future[Run]}."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "name" in item.callspec.params
    }
    names = [name for name in ORDER if name in selected and _skip_reason(name) is None]
    env = _environment()
    redis = None
    extra: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        if name in ON_POSTGRESQL or name == "import" and connection.vendor == "postgresql":
            extra[name] += ["--admin-url", _admin_url()]
        elif name == "import":
            extra[name] += ["--sqlite"]
    if "soak" in names:
        from tests.workers.conftest import Redis

        redis = Redis(tmp_path_factory.mktemp("soak-redis"))
        redis.start()
        extra["soak"] += ["--redis-url", redis.url]
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smoke")
    futures: dict[str, Future] = {name: pool.submit(_run, name, extra[name], env) for name in names}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    if redis is not None:
        redis.stop()


def test_every_benchmark_script_has_a_smoke_run():
    scripts = {path.stem for path in (ROOT / "benchmarks").glob("*.py") if not path.name.startswith("_")}
    assert scripts - set(KEYS) == set(), "give each new script a --smoke mode and its keys in KEYS above"
    assert set(KEYS) == set(ORDER)


@pytest.mark.benchmark
@pytest.mark.parametrize("name", sorted(KEYS))
def test_benchmark_runs_in_smoke_mode_and_prints_its_figures_last(name, smoke_runs):
    reason = _skip_reason(name)
    if reason:
        pytest.skip(reason)
    run = smoke_runs[name].result()
    assert run.returncode == 0, run.output[-4000:]
    try:
        figures = json.loads(run.last_line)
    except json.JSONDecodeError:
        pytest.fail(f"the last line is not JSON: {run.last_line!r}\n{run.output[-4000:]}")
    assert isinstance(figures, dict)
    assert KEYS[name] - set(figures) == set(), run.last_line
    if name in ("review_path", "soak"):
        # What these benchmarks guard besides speed holds at any size.
        assert (figures["lost"], figures["duplicates"], figures["over_k"]) == (0, 0, 0), run.last_line
        assert figures["requests"] > 0
    if name == "soak":
        assert figures["server_errors"] == 0, run.output[-4000:]
        assert figures["training_throughout"] is True
