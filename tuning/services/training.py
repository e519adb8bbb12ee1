"""Training jobs (DPO, reward model): rows from the preference set in, an adapter folder out."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from tuning.engine.errors import BadInput
from tuning.models import Adapter, Job
from tuning.services.adapters import adapter_local_dir
from tuning.services.data import preference_rows
from tuning.services.params import param_defaults
from tuning.services.progress import JobReporter
from tuning.services.runner import Outcome

# Fewer pairs than this and no held-out split is made: one or two pairs say nothing.
MIN_PAIRS_FOR_HELDOUT = 10
# Progress bar shares of the engine's phases within a training call.
TRAIN_PHASES = {"prepare": (0.0, 0.1), "train": (0.1, 0.97), "eval": (0.97, 1.0)}


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (the engine writes them atomically as step-NNNNNN)."""
    if not folder.is_dir():
        return None
    done = sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.startswith("."))
    return done[-1] if done else None


def _train_rows(job: Job) -> list[dict]:
    rows = preference_rows(job.preference_set)
    if not rows:
        raise BadInput(
            f"preference set v{job.preference_set.version} has no pairs on train prompts "
            "(pairs on held-out prompts are kept for evaluation)"
        )
    return rows


def dpo_config(params: dict, *, n_rows: int, checkpoints: bool) -> dict:
    # A job queued before a setting existed runs with that setting's default.
    params = param_defaults("dpo") | params
    return {
        "beta": params["beta"],
        "loss_type": params["loss_type"],
        "simpo_gamma": params["simpo_gamma"],
        "length_alpha": params["length_alpha"],
        "learning_rate": params["learning_rate"],
        "epochs": params["epochs"],
        "max_steps": params["max_steps"],
        "batch_size": params["batch_size"],
        "grad_accum": params["grad_accum"],
        "max_length": params["max_length"],
        "seed": params["seed"],
        "heldout_fraction": params["heldout_fraction"] if n_rows >= MIN_PAIRS_FOR_HELDOUT else 0.0,
        "checkpoint_every": params["checkpoint_every"] if checkpoints else None,
        "lora": {"r": params["lora_r"], "alpha": params["lora_alpha"]},
    }


def log_compute(reporter: JobReporter) -> None:
    """Where the work runs: a job log should say why it was fast or slow."""
    import torch

    from tuning.engine.threads import configure_torch_threads

    # Sized as the engine will size it, so that the line below says what training will use.
    configure_torch_threads()
    if torch.cuda.is_available():
        where = f"CUDA ({torch.cuda.get_device_name(0)})"
    else:
        where = f"CPU, {torch.get_num_threads()} threads"
    reporter.log(f"torch {torch.__version__} on {where}")


def run_dpo(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    """Train the job's adapter: in this process, or in PREFLOOP_TRAIN_PROCESSES child processes."""
    processes = settings.PREFLOOP_TRAIN_PROCESSES
    device = settings.PREFLOOP_TRAIN_DEVICE or None
    if processes == 1:
        log_compute(reporter)
    rows = _train_rows(job)
    checkpoints = workdir / "checkpoints"
    resume = latest_checkpoint(checkpoints) if job.attempts > 1 else None
    if resume is not None:
        reporter.log(f"resuming from checkpoint {resume.name} (attempt {job.attempts})")
    elif job.attempts > 1:
        reporter.log(f"no checkpoint left by the last attempt; starting over (attempt {job.attempts})")
        shutil_rmtree(checkpoints)
    output = workdir / f"output-{job.attempts}"
    shutil_rmtree(output)
    reporter.log(f"training on {len(rows)} pairs from preference set v{job.preference_set.version}")
    inputs = {
        "source": job.base_model.source,
        "adapter": adapter_local_dir(job.input_adapter),
        "rows": rows,
        "output_dir": output,
        "config": dpo_config(job.params, n_rows=len(rows), checkpoints=True),
        "cache_dir": settings.PREFLOOP_MODEL_CACHE,
        "resume_from": resume,
        "checkpoint_dir": checkpoints,
        "device": device,
    }
    if processes > 1:
        from tuning.services.launcher import dpo_in_processes

        # The same phases and events as below; the child's events arrive through a file.
        reporter.stage(0.0, 1.0, TRAIN_PHASES)
        result = dpo_in_processes(
            processes=processes, folder=workdir / f"engine-{job.attempts}", reporter=reporter, **inputs
        )
    else:
        from tuning.engine.dpo import train_dpo

        result = train_dpo(progress=reporter.callback_for(0.0, 1.0, TRAIN_PHASES), **inputs)
    # The engine's plain sentence when training accuracy stayed at chance; the job page shows it.
    warning = result.get("warning")
    if warning:
        reporter.log(f"warning: {warning}")
    summary = {
        "warning": warning,
        "metrics": result.get("metrics", {}),
        "steps": result.get("steps"),
        "data": result.get("data", {}),
        "data_hash": result.get("data_hash"),
        "train_seconds": result.get("seconds"),
        "samples_per_s": result.get("samples_per_s"),
        "resumed_from": resume.name if resume is not None else None,
        "processes": result.get("processes", 1),
    }
    return Outcome(result=summary, adapter_dir=Path(result["output_dir"]))


def run_reward_model(*, job: Job, reporter: JobReporter, workdir: Path) -> Outcome:
    from tuning.engine.reward import train_reward_model

    log_compute(reporter)
    rows = _train_rows(job)
    output = workdir / f"output-{job.attempts}"
    shutil_rmtree(output)
    params = job.params
    config = {
        "learning_rate": params["learning_rate"],
        "epochs": params["epochs"],
        "max_steps": params["max_steps"],
        "batch_size": params["batch_size"],
        "grad_accum": params["grad_accum"],
        "max_length": params["max_length"],
        "seed": params["seed"],
        "lora": {"r": params["lora_r"], "alpha": params["lora_alpha"]},
    }
    reporter.log(f"training a reward model on {len(rows)} pairs")
    result = train_reward_model(
        source=job.base_model.source,
        rows=rows,
        output_dir=output,
        config=config,
        cache_dir=settings.PREFLOOP_MODEL_CACHE,
        progress=reporter.callback_for(0.0, 1.0, TRAIN_PHASES),
    )
    summary = {k: v for k, v in result.items() if k not in ("history", "output_dir")}
    return Outcome(result=summary, adapter_dir=Path(result["output_dir"]), adapter_kind=Adapter.Kind.REWARD)


def shutil_rmtree(path: Path) -> None:
    import shutil

    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
