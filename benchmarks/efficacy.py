"""Does a round make the model better? Two ways to find out, each printing one JSON line last.

Demo mode (the default): the whole loop through the services, on the demo project, with the
default model, as a newcomer's first round runs it. The demo is seeded (its shipped on-policy
pairs carry the simulated reviewer's labels), "Start the next round" freezes a set and trains DPO
from the bare model, the evaluation answers the held-out prompts before and after, and the
simulated reviewer (``prefs.simulated_reviewer``, the rule the demo's guideline states) judges
the blind before/after comparisons through the review services, one judgment per comparison.
Jobs run in this process through the runner a Celery worker calls (``tuning.services.runner``).

    python benchmarks/efficacy.py                  # about 10 minutes on 2 CPU cores
    python benchmarks/efficacy.py --smoke          # a tiny random model: seconds, checks the path

Last line: {"win_rate", "ci_low", "ci_high", "length_controlled_win_rate", "heldout_accuracy",
"heldout_ci_low", "heldout_ci_high", "length_controlled_accuracy", "drift_kl", "train_seconds",
"eval_seconds", ...}. Targets: win rate >= 0.70 with ci_low > 0.5; train + evaluate < 600 s.

HH mode: ``--hh N`` trains an adapter on N pairs of Anthropic's HH-RLHF harmless test split
(``PREFLOOP_HH_FILE``, by default ``../shared/data/hh-rlhf-harmless-base-test.jsonl.gz`` beside
the repository) with the engine alone, and scores 300 held-out pairs it never trained on by the
adapter's implicit reward against the bare model: accuracy with its Wilson 95% interval, split by
whether the chosen answer is the longer or the shorter one (in tokens). ``--loss``, ``--lr``,
``--epochs`` and ``--beta`` make a sweep. Without the file it prints {"skipped": reason}.

    python benchmarks/efficacy.py --hh 1000 [--loss sigmoid|rdpo|simpo|...] [--lr 5e-4]

Last line: {"heldout_accuracy", "ci_low", "ci_high", "accuracy_chosen_longer",
"accuracy_chosen_shorter", "length_controlled_accuracy", "n_heldout", "train_seconds", ...}.
``length_controlled_accuracy`` is the mean of the two split accuracies: a "shorter wins" rule
scores 0.5 on it whatever the data's mix.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH_FILE = Path(os.environ.get("PREFLOOP_HH_FILE", ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"))
HH_HELDOUT = 300


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny random model and a few prompts: checks the path in seconds")
    parser.add_argument("--hh", type=int, default=0, metavar="N", help="train on N HH pairs, score 300 held-out ones")
    parser.add_argument("--loss", default=None, help="DPO loss type (default: the engine's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the engine's)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--max-length", type=int, default=None, help="HH: tokens per prompt + answer")
    parser.add_argument("--length-alpha", type=float, default=None, help="R-DPO: < 0 keeps 'shorter wins' out of the margin")
    parser.add_argument("--simpo-gamma", type=float, default=None, help="SimPO's target margin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser.parse_args()


def _config_overrides(args) -> dict:
    out = {}
    for name, key in (("loss", "loss_type"), ("lr", "learning_rate"), ("epochs", "epochs"), ("beta", "beta"), ("max_length", "max_length"),
                      ("length_alpha", "length_alpha"), ("simpo_gamma", "simpo_gamma")):
        value = getattr(args, name)
        if value is not None:
            out[key] = value
    return out


def length_split(rewards: list[dict]) -> dict:
    """Held-out accuracy with its interval, overall and by whether the chosen answer is the longer one."""
    from tuning.engine.evaluation import accuracy_by_length

    result = accuracy_by_length(rewards)
    return {
        "heldout_accuracy": result["accuracy"],
        "ci_low": result["low"],
        "ci_high": result["high"],
        "accuracy_chosen_longer": result["chosen_longer"]["accuracy"],
        "n_chosen_longer": result["chosen_longer"]["n"],
        "accuracy_chosen_shorter": result["chosen_shorter"]["accuracy"],
        "n_chosen_shorter": result["chosen_shorter"]["n"],
        "length_controlled_accuracy": result["length_balanced"],
        "n_heldout": result["n"],
    }


# -- HH mode ------------------------------------------------------------------------------------


def _terminal_progress(event: dict) -> None:
    """One line per event on stderr: phase, step of total, ETA (the JSON line stays on stdout)."""
    if "message" in event:
        print(f"[{event['phase']}] {event['message']}", file=sys.stderr, flush=True)
        return
    eta = event.get("eta_s")
    loss = f" loss {event['loss']:.4f}" if isinstance(event.get("loss"), float) else ""
    print(
        f"[{event['phase']}] {event['step']}/{event['total_steps']}{loss}"
        + (f", ETA {eta:.0f} s" if eta is not None else ""),
        file=sys.stderr,
        flush=True,
    )


def _hh_rows() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from prefs.formats import hh

    rows = []
    with gzip.open(HH_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                record = hh.parse(json.loads(line))
            except Exception:  # noqa: S112  (HH holds a few pairs whose prompts differ: not pairs)
                continue
            rows.append({"prompt": record.prompt, "chosen": record.a.text, "rejected": record.b.text})
    return rows


def run_hh(args) -> dict:
    if not HH_FILE.is_file():
        return {"skipped": f"{HH_FILE} is missing; set PREFLOOP_HH_FILE to the HH-RLHF harmless test file"}
    from tuning.engine.dpo import DPOConfig, train_dpo
    from tuning.engine.reward import implicit_rewards

    rows = _hh_rows()
    random.Random(args.seed).shuffle(rows)
    heldout, train = rows[:HH_HELDOUT], rows[HH_HELDOUT : HH_HELDOUT + args.hh]
    overrides = {"max_length": 384, "seed": args.seed} | _config_overrides(args)
    config = DPOConfig(**overrides)
    folder = Path(tempfile.mkdtemp(prefix="efficacy-hh-"))
    cache = os.environ.get("PREFLOOP_MODEL_CACHE", str(ROOT / "var" / "models"))
    started = time.perf_counter()
    result = train_dpo(source="smollm2-135m-instruct", rows=train, output_dir=folder / "adapter", config=config, cache_dir=cache,
        progress=_terminal_progress,
    )
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rewards = implicit_rewards(
        source="smollm2-135m-instruct", adapter=folder / "adapter", parent_adapter=None, rows=heldout,
        beta=config.beta, cache_dir=cache, max_length=config.max_length, progress=_terminal_progress,
    )
    score_seconds = time.perf_counter() - started
    out = length_split(rewards)
    final = result["metrics"]
    return out | {
        "train_pairs": len(train),
        "steps": result["steps"],
        "config": {k: v for k, v in config.to_dict().items() if k != "lora"},
        "train_accuracy_last_epoch": final.get("last_epoch/accuracy", final.get("rewards/accuracies")),
        "warning": result.get("warning"),
        "train_seconds": round(train_seconds, 1),
        "score_seconds": round(score_seconds, 1),
    }


# -- demo mode ----------------------------------------------------------------------------------


def _run_job(job_id: int) -> float:
    from tuning.models import Job
    from tuning.services.runner import job_run

    started = time.perf_counter()
    job_run(job_id=job_id, worker="efficacy-benchmark")
    job = Job.objects.get(pk=job_id)
    if job.state != Job.State.SUCCEEDED:
        raise SystemExit(f"job {job.pk} ({job.kind}) {job.state}: {job.error}")
    return time.perf_counter() - started


def _judge_queue(project, reviewer) -> int:
    """The simulated reviewer judges every comparison it is offered, blind, through the services."""
    from prefs.services.assignment import comparison_next_for
    from prefs.services.judging import Verdict, judgment_record
    from prefs.simulated_reviewer import simulated_verdict

    judged = 0
    while (assignment := comparison_next_for(reviewer=reviewer, project=project)) is not None:
        comparison = assignment.comparison
        # The rule reads the two texts as shown; the screen side follows from the assignment.
        left, right = (
            (comparison.candidate_a, comparison.candidate_b) if assignment.left_is_a else (comparison.candidate_b, comparison.candidate_a)
        )
        verdict = simulated_verdict(left.text, right.text)
        screen = {"A": "left", "B": "right", "tie": "tie", "both_bad": "both_bad"}[verdict]
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice=screen))
        judged += 1
    return judged


def _smoke_source(folder: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.tuning.engine.conftest import build_tiny_model

    return str(build_tiny_model(folder / "tiny", seed=1))


def run_demo(args, folder: Path) -> dict:
    import django

    # The same throwaway setup as job_overhead.py: SQLite file, filesystem broker, media in `folder`.
    from job_overhead import _environment

    _environment(folder)
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from prefs.services.demo import demo_seed
    from prefs.services.users import user_create_or_update
    from prefs.stats.winrate import wilson_interval
    from tuning.models import Evaluation, Job
    from tuning.services.evaluations import evaluation_summary
    from tuning.services.rounds import round_start

    seeded = demo_seed()
    project = seeded["project"]
    # One judgment per comparison: the simulated reviewer is deterministic, so a second would
    # only count the same verdict twice and narrow the interval falsely.
    project.overlap = 1
    project.save(update_fields=["overlap"])
    if args.smoke:
        project.base_model.source = _smoke_source(folder)
        project.base_model.save(update_fields=["source"])
    made = user_create_or_update(username="simulated-reviewer", role="reviewer", project_ids=[project.pk])
    reviewer = made[0] if isinstance(made, tuple) else made

    round_ = round_start(project=project, train_params=_config_overrides(args))
    train_job = round_.train_job
    train_seconds = _run_job(train_job.pk)
    evaluation = Evaluation.objects.get(source_job=train_job)
    eval_seconds = _run_job(evaluation.job_id)
    judged = _judge_queue(project, reviewer)
    evaluation.refresh_from_db()
    summary = evaluation_summary(evaluation)
    arm = next(a for a in summary["arms"] if a["arm"] == "before")
    metrics = evaluation.metrics
    train_result = Job.objects.get(pk=train_job.pk).result or {}
    trained = train_result.get("metrics", {})
    held = metrics.get("heldout_split_preference") or {}
    held_n = held.get("n") or 0
    held_acc = held.get("accuracy")
    held_low, held_high = wilson_interval(held_acc * held_n, held_n) if held_acc is not None and held_n else (None, None)
    lc = arm.get("lc") or {}
    return {
        "win_rate": arm.get("rate"),
        "ci_low": arm.get("low"),
        "ci_high": arm.get("high"),
        "n_verdicts": arm.get("n"),
        "wins": arm.get("wins"),
        "losses": arm.get("losses"),
        "ties": arm.get("ties"),
        "length_controlled_win_rate": lc.get("rate"),
        "heldout_accuracy": held_acc,
        "heldout_ci_low": held_low,
        "heldout_ci_high": held_high,
        "n_heldout_pairs": held_n,
        "length_controlled_accuracy": (metrics.get("heldout_prompts_preference") or {}).get("length_balanced"),
        "drift_kl": (metrics.get("drift") or {}).get("mean_kl"),
        "train_pairs": (train_result.get("data") or {}).get("train_pairs"),
        "steps": train_result.get("steps"),
        "train_accuracy_last_epoch": trained.get("last_epoch/accuracy", trained.get("rewards/accuracies")),
        "warning": train_result.get("warning"),
        "simulated_judgments": judged,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "round_seconds": round(train_seconds + eval_seconds, 1),
    }


def main() -> None:
    args = _args()
    sys.path.insert(0, str(ROOT))
    from tuning.engine.threads import configure_torch_threads

    configure_torch_threads()
    if args.hh:
        print(json.dumps(run_hh(args)))
        return
    folder = Path(tempfile.mkdtemp(prefix="efficacy-"))
    try:
        print(json.dumps(run_demo(args, folder)))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
