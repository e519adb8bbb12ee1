"""Soak: 50 reviewer clients for 2 minutes against gunicorn and PostgreSQL while a worker trains.

Production-style: gunicorn (gthread) serves Prefloop from a scratch PostgreSQL database (created
and dropped here), a real Celery worker takes a DPO job from Redis and trains it on the default
model (or a tiny random one) for the whole soak, and N reviewer clients (threads, a connection
per request, one API token each; the client of benchmarks/review_path.py) loop next -> judgment. Clients
start once training has reached its first step; afterwards the job is cancelled.

Then the database is checked: every 201 the clients saw is one stored judgment (`lost`), no
reviewer judged a comparison twice and nothing was stored unacknowledged (`duplicates`), no
comparison got more than k judgments (`over_k`); `server_errors` counts 5xx answers.

    python benchmarks/soak.py [--clients 50] [--seconds 120] [--model default|tiny]
    python benchmarks/soak.py --smoke     # 4 clients for 2 s beside a tiny model: does it still run?

The bar: zero 5xx, zero lost or duplicate judgments; p99 reported. Last line: one JSON object
(`p99_ms`, `p50_ms`, `errors`, `server_errors`, `lost`, `duplicates`, `judgments_per_s`, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.job_overhead import _pairs  # noqa: E402
from benchmarks.review_path import (  # noqa: E402
    Client,
    _drop_database,
    _free_port,
    _recreate_database,
    _seed,
    latency_figures,
)

# Seconds allowed for the worker to load the model and reach its first training step.
TRAINING_START_S = 600


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120.0, help="measured time, after warm-up")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--comparisons", type=int, default=15000, help="enough that no client runs dry")
    parser.add_argument("--model", choices=("default", "tiny"), default="default", help="what the worker trains")
    parser.add_argument("--train-pairs", type=int, default=64)
    parser.add_argument(
        "--train-threads", type=int, default=1,
        help="CPU threads the training worker may use (a GPU worker takes next to none of the web host's CPU)",
    )
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--database", default="prefloop_bench_soak")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (worker log, media)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds at tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win. The database is this run's own, so a smoke
        # run beside a measuring run never drops the measuring run's database, and its broker is
        # another Redis database, so its worker never takes the measuring run's job.
        parser.set_defaults(clients=4, seconds=2.0, warmup=0.5, workers=1, threads=2, comparisons=200,
                            model="tiny", train_pairs=8, database=f"prefloop_smoke_soak_{os.getpid()}",
                            redis_url="redis://127.0.0.1:6379/8")
        args = parser.parse_args()
    return args


def _environment(args, folder: Path) -> dict:
    db_url = args.admin_url.rsplit("/", 1)[0] + "/" + args.database
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": args.redis_url,
        "DEBUG": "False",
        # The clients are 50 reviewers on one address: the API's per-user limit is not the subject.
        "API_THROTTLE_USER": "1000000/min",
        "LOG_LEVEL": "WARNING",
        "MEDIA_ROOT": str(folder / "media"),
        "PREFLOOP_JOB_DIR": str(folder / "jobs"),
        "PREFLOOP_VAR_DIR": str(folder / "var"),
        "PREFLOOP_GPU_LOCK_DIR": str(folder),
        # The dequantised default model is cached where the demo keeps it: converted once.
        "PREFLOOP_MODEL_CACHE": os.environ.get("PREFLOOP_MODEL_CACHE", str(ROOT / "var" / "models")),
    }
    for name in ("REDIS_URL", "TEST_DATABASE_NAME"):
        os.environ.pop(name, None)
    os.environ.update(env)
    return {**os.environ, **env}


def _training_job(args, folder: Path):
    """A project with judged pairs, a frozen set, and a DPO job long enough to outlast the soak."""
    from prefs.models import Judgment, Project
    from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
    from prefs.services.snapshots import preference_set_freeze
    from tuning.models import BaseModel
    from tuning.services.launch import job_launch

    if args.model == "tiny":
        from tests.tuning.engine.conftest import build_tiny_model

        source = str(build_tiny_model(folder / "tiny", seed=1))
    else:
        source = "smollm2-135m-instruct"
    base = BaseModel.objects.create(name=f"soak-{args.model}", source=source)
    project = Project.objects.create(name="soak training", base_model=base)
    for index, (messages, chosen, rejected) in enumerate(_pairs(args.train_pairs, args.model)):
        prompt = prompt_get_or_create(project=project, messages=messages, external_id=f"t{index}")
        comparison = comparison_create(
            project=project, prompt=prompt, a=CandidateSpec(chosen, source="chosen"), b=CandidateSpec(rejected, source="rejected")
        )
        Judgment.objects.create(comparison=comparison, imported=True, choice="A")
    preference_set = preference_set_freeze(project=project)
    return job_launch(
        kind="dpo",
        project=project,
        preference_set_id=preference_set.pk,
        params={"max_steps": 100_000, "batch_size": 2, "max_length": 256, "heldout_fraction": 0.0, "evaluate": False},
    )


def _wait_for_training(job, worker, log: Path) -> None:
    from tuning.models import Job, JobEvent

    deadline = time.monotonic() + TRAINING_START_S
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in Job.FINAL_STATES:
            raise SystemExit(f"the training job ended before the soak: {job.state} {job.error}")
        if JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").exists():
            return
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited; see {log}")
        time.sleep(1)
    raise SystemExit(f"training did not start within {TRAINING_START_S} s; see {log}")


def _status(error: str) -> int | None:
    """The HTTP status in a client's error line ("next 502 b'...'"), None for network errors."""
    found = re.match(r"^(?:next|judgment) (\d{3}) ", error)
    return int(found.group(1)) if found else None


def main() -> None:
    args = _args()
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    env = _environment(args, folder)
    print(f"creating database {args.database} ...", file=sys.stderr)
    _recreate_database(args.admin_url, args.database)
    server = worker = None
    log = folder / "worker.log"
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        project_id, tokens = _seed(args.clients, args.comparisons, args.overlap)
        job = _training_job(args, folder)

        with open(log, "wb") as handle:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "gpu,default", "-c", "1", "--loglevel=INFO"],
                cwd=ROOT, env={**env, "OMP_NUM_THREADS": str(args.train_threads)},
                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            )
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
                "--keep-alive", "0", "--log-level", "warning",
            ],
            cwd=ROOT, env=env, start_new_session=True,
        )
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        print(f"waiting for the worker to train ({args.model} model) ...", file=sys.stderr)
        _wait_for_training(job, worker, log)
        print(f"gunicorn on {port}: {args.workers} workers x {args.threads} threads; {args.clients} clients "
              f"for {args.seconds:.0f} s while job {job.pk} trains", file=sys.stderr)

        from tuning.models import Job, JobEvent

        steps_before = JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").count()
        start = time.perf_counter() + 0.5
        warm_until = start + args.warmup
        stop = warm_until + args.seconds
        clients = [Client(port, tokens[i], project_id, start, warm_until, stop) for i in range(args.clients)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        finished = time.perf_counter()
        job.refresh_from_db()
        still_training = job.state == Job.State.RUNNING
        steps_during = JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").count() - steps_before

        from tuning.services.jobs import job_cancel

        job_cancel(job=job)

        from django.db.models import Count

        from prefs.models import Comparison, Judgment

        seen_ids = [i for c in clients for i in c.judgment_ids]
        stored = set(Judgment.objects.filter(pk__in=seen_ids).values_list("pk", flat=True))
        lost = len(set(seen_ids) - stored)
        reviewed = Judgment.objects.filter(comparison__project_id=project_id)
        total_stored = reviewed.count()
        duplicates = total_stored - len(set(reviewed.values_list("comparison_id", "reviewer_id")))
        extra_rows = total_stored - len(set(seen_ids))  # stored but never acknowledged
        over_k = (
            Comparison.objects.filter(project_id=project_id).annotate(n=Count("judgments")).filter(n__gt=args.overlap).count()
        )
        judgments = sum(c.judgments for c in clients)
        measured = min(args.seconds, finished - warm_until)
        errors = [e for c in clients for e in c.errors]
        server_errors = sum(1 for e in errors if (_status(e) or 0) >= 500)
        for error in errors[:5]:
            print("error:", error, file=sys.stderr)
        result = {
            "judgments_per_s": round(judgments / measured, 1),
            **latency_figures(clients),
            "errors": len(errors),
            "server_errors": server_errors,
            "lost": lost,
            "duplicates": duplicates + max(0, extra_rows),
            "over_k": over_k,
            "clients": args.clients,
            "seconds": round(measured, 1),
            "workers": args.workers,
            "threads": args.threads,
            "train_model": args.model,
            "train_steps_during_soak": steps_during,
            "training_throughout": still_training,
        }
        print(f"{result['judgments_per_s']} judgments/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
              f"errors {result['errors']} (5xx {server_errors}), lost {lost}, duplicates {result['duplicates']}, "
              f"{steps_during} training steps meanwhile", file=sys.stderr)
        print(json.dumps(result))
    finally:
        for process in (server, worker):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        from django.db import connections

        connections.close_all()
        _drop_database(args.admin_url, args.database)
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
