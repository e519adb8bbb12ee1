"""What running DPO as a job costs: the engine alone vs the same run through a Celery worker.

The same preference rows and settings train twice per round, alternating: once by calling
`tuning.engine.dpo.train_dpo` directly (its callback only notes the time), once as a DPO job that
a real `celery -A workers worker` process (embedded filesystem broker, SQLite file, as in the
demo) claims and runs, with its progress callback, throttled database writes, per-step cancel
check and heartbeat thread. The measure is the median time from one optimisation step to the
next (callback included), which a busy machine disturbs less than whole-run times (reported too,
as pairs per second over the whole train_dpo call); the figure is the median, over rounds, of
each job's ratio to the engine run just before it. On a shared machine whose load swings by
minutes, only more rounds help. The worker also measures its own bookkeeping (time inside the callback, the database
writes and the heartbeat thread) as a share of the job's run: `bookkeeping_pct`, the worst round.
The issue's bar: the two arms differ by less than 5%.

    python benchmarks/job_overhead.py                    # default model, 16 HH pairs, 6 steps
    python benchmarks/job_overhead.py --model tiny       # a tiny random model: seconds, and the
                                                         # harshest case (steps of milliseconds)
    python benchmarks/job_overhead.py --smoke            # the tiny model, one round of 2 steps:
                                                         # does it still run?

Last line: {"engine_step_s", "job_step_s", "difference_pct", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("default", "tiny"), default="default")
    parser.add_argument("--pairs", type=int, default=16, help="preference pairs in the set")
    parser.add_argument("--steps", type=int, default=6, help="optimisation steps per run")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per prompt + response")
    parser.add_argument("--rounds", type=int, default=3, help="engine/job pairs of runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, worker log)")
    parser.add_argument("--smoke", action="store_true",
                        help="the tiny model, tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win.
        parser.set_defaults(model="tiny", pairs=4, steps=2, batch_size=2, max_length=64, rounds=1)
        args = parser.parse_args()
    return args


def _environment(folder: Path) -> dict:
    """A throwaway demo-like setup: SQLite file, filesystem broker, media and jobs in `folder`."""
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "MEDIA_ROOT": str(folder / "media"),
        "PREFLOOP_JOB_DIR": str(folder / "jobs"),
        "PREFLOOP_VAR_DIR": str(folder / "var"),
        "PREFLOOP_GPU_LOCK_DIR": str(folder),
        # The dequantised default model is cached where the demo keeps it: converted once.
        "PREFLOOP_MODEL_CACHE": os.environ.get("PREFLOOP_MODEL_CACHE", str(ROOT / "var" / "models")),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    for name in ("REDIS_URL", "TEST_DATABASE_NAME"):
        os.environ.pop(name, None)
    os.environ.update(env)
    return env


def _pairs(n: int, model: str) -> list[tuple[list[dict], str, str]]:
    if model == "default" and HH.is_file():
        from prefs.formats import hh

        out = []
        with gzip.open(HH, "rt", encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = hh.parse(json.loads(line))
                except Exception:  # noqa: S112  (a malformed line is skipped: the workload needs n pairs)
                    continue
                out.append((record.prompt, record.a.text, record.b.text))
                if len(out) == n:
                    break
        return out
    polite = ["Of course! Happy to help.", "Thank you for asking. Here is a short answer."]
    rude = ["Go away.", "That is a stupid question."]
    return [
        ([{"role": "user", "content": f"Question number {i}: can you help me?"}], polite[i % 2], rude[i % 2])
        for i in range(n)
    ]


def _setup(args, folder: Path):
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from prefs.models import Judgment, Project
    from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
    from prefs.services.snapshots import preference_set_freeze
    from tuning.models import BaseModel

    if args.model == "tiny":
        sys.path.insert(0, str(ROOT))
        from tests.tuning.engine.conftest import build_tiny_model

        source = str(build_tiny_model(folder / "tiny", seed=1))
    else:
        source = "smollm2-135m-instruct"
    base = BaseModel.objects.create(name=f"bench-{args.model}", source=source)
    project = Project.objects.create(name="job overhead", base_model=base)
    for index, (messages, chosen, rejected) in enumerate(_pairs(args.pairs, args.model)):
        prompt = prompt_get_or_create(project=project, messages=messages, external_id=f"p{index}")
        comparison = comparison_create(
            project=project, prompt=prompt, a=CandidateSpec(chosen, source="chosen"), b=CandidateSpec(rejected, source="rejected")
        )
        Judgment.objects.create(comparison=comparison, imported=True, choice="A")
    return project, preference_set_freeze(project=project)


def _median_gap(stamps: list[float]) -> float:
    """Median seconds between consecutive steps."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return statistics.median(gaps) if gaps else float("nan")


def _cleaned(params: dict) -> dict:
    from tuning.services.params import params_clean

    return params_clean(kind="dpo", raw=params)[0]


def main() -> None:
    args = _args()
    folder = Path(tempfile.mkdtemp(prefix="job-overhead-"))
    env = _environment(folder)
    project, preference_set = _setup(args, folder)

    import torch
    from django.conf import settings

    from tuning.engine.dpo import train_dpo
    from tuning.models import Job, JobEvent
    from tuning.services.data import preference_rows
    from tuning.services.launch import job_launch
    from tuning.services.training import dpo_config

    params = {
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "heldout_fraction": 0.0,
        "evaluate": False,
    }
    rows = preference_rows(preference_set)
    worker_log = open(folder / "worker.log", "wb")  # noqa: SIM115  (closed at the end)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "gpu,default", "-c", "1", "--loglevel=INFO"],
        cwd=ROOT, env={**os.environ, **env}, stdout=worker_log, stderr=subprocess.STDOUT,
    )
    runs = []
    try:
        for round_ in range(args.rounds):
            config = dpo_config(_cleaned(params), n_rows=len(rows), checkpoints=True)
            stamps: list[float] = []

            def note(event: dict, stamps=stamps) -> None:
                if event.get("phase") == "train":
                    stamps.append(time.perf_counter())

            engine = train_dpo(
                progress=note,
                source=project.base_model.source,
                rows=rows,
                output_dir=folder / f"engine-{round_}",
                config=config,
                cache_dir=settings.PREFLOOP_MODEL_CACHE,
                checkpoint_dir=folder / f"engine-{round_}-checkpoints",
            )
            runs.append(
                {"run": "engine", "round": round_, "seconds": engine["seconds"], "pairs_per_s": engine["samples_per_s"],
                 "step_s": _median_gap(stamps), "compute": f"{torch.get_num_threads()} CPU threads"}
            )
            print(json.dumps(runs[-1]), flush=True)
            # Queued only now, so the worker's job never overlaps the engine's run.
            job = job_launch(kind="dpo", project=project, preference_set_id=preference_set.pk, params=params)
            while True:
                job.refresh_from_db()
                if job.state in Job.FINAL_STATES:
                    break
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited; see {folder / 'worker.log'}")
                time.sleep(0.5)
            if job.state != Job.State.SUCCEEDED:
                raise SystemExit(f"job {job.pk} {job.state}: {job.error}")
            times = JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").order_by("id")
            runs.append(
                {"run": "job", "round": round_, "seconds": job.result["train_seconds"], "pairs_per_s": job.result["samples_per_s"],
                 "step_s": _median_gap([t.timestamp() for t in times.values_list("created_at", flat=True)]),
                 "job_wall_s": round((job.finished_at - job.started_at).total_seconds(), 3),
                 "bookkeeping_s": job.result["bookkeeping_s"],
                 "compute": next((line for line in job.log_tail.splitlines() if line.startswith("torch ")), "")}
            )
            print(json.dumps(runs[-1]), flush=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)

    engine_rate = statistics.median(r["pairs_per_s"] for r in runs if r["run"] == "engine")
    job_rate = statistics.median(r["pairs_per_s"] for r in runs if r["run"] == "job")
    # Paired rounds: each job is compared with the engine run just before it, and the median of
    # those ratios is the figure, so load that drifts over minutes on a shared machine cancels.
    engines = [r for r in runs if r["run"] == "engine"]
    jobs = [r for r in runs if r["run"] == "job"]
    ratios = [j["step_s"] / e["step_s"] for e, j in zip(engines, jobs, strict=True)]
    ratio = statistics.median(ratios)
    engine_step = statistics.median(r["step_s"] for r in engines)
    job_step = statistics.median(r["step_s"] for r in jobs)
    print(
        json.dumps(
            {
                "engine_step_s": round(engine_step, 5),
                "job_step_s": round(job_step, 5),
                # Positive: the job is slower by this much (median over the paired rounds).
                "difference_pct": round(100 * (ratio - 1), 2),
                "ratio": round(ratio, 4),
                "round_ratios": [round(r, 4) for r in ratios],
                "engine_pairs_per_s": engine_rate,
                "job_pairs_per_s": job_rate,
                "whole_run_difference_pct": round(100 * (engine_rate - job_rate) / engine_rate, 2),
                # Measured inside the worker: share of the job's run spent on its own bookkeeping.
                "bookkeeping_pct": round(100 * max(r["bookkeeping_s"] / r["job_wall_s"] for r in jobs), 3),
                "model": args.model,
                "pairs": len(rows),
                "steps": args.steps,
                "batch_size": args.batch_size,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
