"""Running a claimed job in a worker: the service behind the `job_run` task.

Only worker processes import this module's handlers' engine calls (torch and friends load
inside them). A run claims the job, reports progress through a JobReporter, and ends in exactly
one conditional state change; results (adapters, comparisons) are written in the same
transaction as that change, so a run that lost its job (reaped, cancelled) writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from tuning.engine.errors import Cancelled, EngineError
from tuning.models import Adapter, Job
from tuning.services.jobs import job_claim, job_fail, job_succeed
from tuning.services.progress import JobReporter

logger = logging.getLogger(__name__)


class JobLost(Exception):
    """The run no longer owns its job (reaped as stale, or finished elsewhere)."""


@dataclass
class Outcome:
    """What a handler hands back: the result to store, and an adapter folder to register."""

    result: dict = field(default_factory=dict)
    adapter_dir: Path | None = None
    adapter_kind: str = Adapter.Kind.POLICY
    # Extra writes to make in the success transaction (e.g. comparisons), given the new adapter.
    on_success: Callable[[Adapter | None], None] | None = None


@contextlib.contextmanager
def owned_atomic(job: Job) -> Iterator[None]:
    """A transaction holding the job's row, for results written before the run ends; JobLost
    when the run no longer owns the job (the row lock keeps the reaper out meanwhile)."""
    with transaction.atomic():
        owned = (
            Job.objects.select_for_update()
            .filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts)
            .exists()
        )
        if not owned:
            raise JobLost()
        yield


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_workdir(job: Job) -> Path:
    """Scratch space of a job (staging outputs, checkpoints), kept across its attempts."""
    folder = Path(settings.PREFLOOP_JOB_DIR) / str(job.pk)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _handlers() -> dict[str, Callable[..., Outcome]]:
    from tuning.services import evaluations, sampling, training

    return {
        Job.Kind.DPO: training.run_dpo,
        Job.Kind.REWARD_MODEL: training.run_reward_model,
        Job.Kind.REJECTION_SAMPLING: sampling.run_rejection_sampling,
        Job.Kind.GENERATE: sampling.run_generate,
        Job.Kind.EVALUATE: evaluations.run_evaluation,
    }


def job_run(*, job_id: int, worker: str | None = None) -> str:
    """Claim and run a job; returns its final state, or "skipped" when it was not ours to run."""
    job = job_claim(job_id=job_id, worker=worker or worker_name())
    if job is None:
        logger.info("job %s: not queued (already taken, finished or cancelled); nothing to do", job_id)
        return "skipped"
    workdir = job_workdir(job)
    logger.info("job %s (%s): attempt %s of %s", job.pk, job.kind, job.attempts, job.max_attempts)
    reporter = JobReporter(job)
    final = Job.State.FAILED
    try:
        with reporter:
            outcome = _handlers()[job.kind](job=job, reporter=reporter, workdir=workdir)
            if reporter.lost:
                raise JobLost()
        final = _complete(job, outcome, reporter)
    except JobLost:
        final = "lost"
    except Cancelled as exc:
        if reporter.lost:
            final = "lost"
        else:
            job_fail(job=job, error=f"Cancelled: {exc}.", cancelled=True)
            final = Job.State.CANCELLED
    except EngineError as exc:
        # The engine's messages name the cause; they are the summary a person reads.
        job_fail(job=job, error=str(exc), log_lines=[f"error: {exc}"])
    except Exception as exc:
        summary = f"{type(exc).__name__}: {exc}"
        logger.exception("job %s failed", job.pk)
        lines = traceback.format_exc().splitlines()[-30:]
        job_fail(job=job, error=summary, log_lines=lines)
    finally:
        if final != "lost":
            job.refresh_from_db(fields=["state"])
            if job.state in Job.FINAL_STATES:
                shutil.rmtree(workdir, ignore_errors=True)
    logger.info("job %s: %s", job.pk, final)
    return str(final)


def _complete(job: Job, outcome: Outcome, reporter: JobReporter) -> str:
    from tuning.services.adapters import adapter_next_name, adapter_register
    from tuning.services.launch import TRAINING_KINDS, evaluation_launch

    def finish(adapter: Adapter | None) -> None:
        if outcome.on_success is not None:
            outcome.on_success(adapter)
        result = dict(
            outcome.result, seconds=round(reporter.elapsed_s(), 3), bookkeeping_s=round(reporter.spent_s, 3)
        )
        if not job_succeed(job=job, result=result, output_adapter=adapter):
            # Rolls back the adapter row and the writes above; the stored copy is removed.
            raise JobLost()
        if adapter is not None and job.kind in TRAINING_KINDS and job.params.get("evaluate", False):
            evaluation_launch(source_job=job, after=adapter)

    if outcome.adapter_dir is None:
        with transaction.atomic():
            finish(None)
        return Job.State.SUCCEEDED
    adapter_register(
        folder=outcome.adapter_dir,
        base_model=job.base_model,
        project=job.project,
        name=adapter_next_name(project=job.project, kind=job.kind),
        kind=outcome.adapter_kind,
        parent=job.input_adapter,
        job=job,
        preference_set=job.preference_set,
        before_commit=finish,
    )
    return Job.State.SUCCEEDED
