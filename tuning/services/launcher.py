"""Training in child processes: the engine's command line run for a job, watched by the worker.

With PREFLOOP_TRAIN_PROCESSES > 1 a DPO job runs ``python -m tuning.engine dpo --processes N``
(one rank per card, data parallel) instead of calling ``train_dpo`` in the worker. The job's
inputs go to files in a folder of the job's scratch space; the engine appends its progress
events to a JSON Lines file, which this module feeds to the job's JobReporter exactly as the
in-process callback would be fed, so the job page sees the same events; the result is a JSON
file read at the end.

Stopping: a cancel (or a lost job) sends SIGINT to the engine's launcher, which passes it to
every rank; rank 0's progress callback then asks for a stop, so all ranks end together at the
end of the step and write nothing (no adapter; the run's own checkpoints removed). After
STOP_GRACE_S the whole group gets SIGKILL. Every engine process dies with the worker
(``--die-with-parent``), so a killed worker leaves no training behind to race its retry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from tuning.engine.errors import BadInput, Cancelled, EngineError, TrainingDiverged
from tuning.services.progress import JobReporter

logger = logging.getLogger(__name__)

# Seconds between looks at the child's progress file and exit status.
POLL_S = 0.2
# Seconds a stopping engine gets to end its step and exit before SIGKILL (its launcher gives the
# ranks 30 s of its own first).
STOP_GRACE_S = 60.0
# Lines of the engine's output kept in the job's log and error when it fails.
TAIL_LINES = 25
# The engine's exit statuses (tuning/engine/cli.py).
EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_STOPPED = 2, 3, 130


class EngineProcessFailed(EngineError):
    """The engine's processes ended without a result, for a reason of their own (a crash)."""


@dataclass
class EngineRun:
    """One engine command run as a child: where its files live, and how it ended."""

    folder: Path

    @property
    def progress_file(self) -> Path:
        return self.folder / "progress.jsonl"

    @property
    def result_file(self) -> Path:
        return self.folder / "result.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "engine.log"


def dpo_in_processes(
    *,
    processes: int,
    folder: Path,
    reporter: JobReporter,
    source: str,
    adapter: Path | None,
    rows: list[dict],
    output_dir: Path,
    config: dict,
    checkpoint_dir: Path | None,
    resume_from: Path | None,
    cache_dir: Path | None,
    device: str | None,
) -> dict:
    """``train_dpo``'s work in ``processes`` child processes; returns ``train_dpo``'s result.

    Raises what ``train_dpo`` raises (BadInput, TrainingDiverged, Cancelled), or
    EngineProcessFailed with the end of the engine's output when it crashed.
    """
    run = EngineRun(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (run.progress_file, run.result_file, run.log_file):
        stale.unlink(missing_ok=True)
    rows_file = folder / "rows.jsonl"
    rows_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    config_file = folder / "config.json"
    config_file.write_text(json.dumps(config, indent=1))
    args = [
        "dpo",
        "--processes", str(processes),
        "--source", str(source),
        "--rows", str(rows_file),
        "--config", str(config_file),
        "--output-dir", str(output_dir),
        "--output", str(run.result_file),
        "--progress-jsonl", str(run.progress_file),
        "--quiet",
        "--die-with-parent",
    ]  # fmt: skip
    optional = {
        "--adapter": adapter,
        "--checkpoint-dir": checkpoint_dir,
        "--resume-from": resume_from,
        "--cache-dir": cache_dir,
        "--device": device,
    }
    for flag, value in optional.items():
        if value:
            args += [flag, str(value)]
    reporter.log(f"training in {processes} processes: python -m tuning.engine {' '.join(args)}")
    status, stopped = _watch(run, args, reporter)
    return _outcome(run, status, stopped=stopped, reporter=reporter)


def _engine_env() -> dict[str, str]:
    env = dict(os.environ)
    # The children import tuning.engine from this checkout, wherever the worker was started.
    root = str(settings.BASE_DIR)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _watch(run: EngineRun, args: list[str], reporter: JobReporter) -> tuple[int, bool]:
    """Run the engine, relaying its events until it exits -> (exit status, whether we stopped it)."""
    with open(run.log_file, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tuning.engine", *args],
            cwd=settings.BASE_DIR,
            env=_engine_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A group of its own: the worker's terminal or supervisor signals reach the worker,
            # which decides; the group can be killed as one.
            start_new_session=True,
        )
    events = _JsonLinesTail(run.progress_file)
    stop_sent: float | None = None
    try:
        while True:
            exited = process.poll() is not None
            for event in events.read():
                if reporter.callback(event) and stop_sent is None:
                    stop_sent = _ask_to_stop(process)
            # The heartbeat thread notices a cancel (or a lost job) even while no event comes,
            # e.g. during a long model load.
            if stop_sent is None and (reporter.cancel_requested or reporter.lost):
                stop_sent = _ask_to_stop(process)
            if exited:
                return process.returncode, stop_sent is not None
            if stop_sent is not None and time.monotonic() - stop_sent > STOP_GRACE_S:
                logger.warning("engine pid %s did not stop within %.0f s; killing it", process.pid, STOP_GRACE_S)
                _kill_group(process)
            time.sleep(POLL_S)
    finally:
        # Leaving early (an error here, a Celery time limit): never leave the engine running.
        if process.poll() is None:
            _ask_to_stop(process)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(process)


def _ask_to_stop(process: subprocess.Popen) -> float:
    # To the launcher alone: it passes SIGINT on to each rank once. A SIGINT to the whole group
    # would reach the ranks twice (ours and the launcher's), and a second one aborts mid-step.
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    return time.monotonic()


def _kill_group(process: subprocess.Popen) -> None:
    # The ranks sit in sessions of their own (the launcher's doing); they die with the launcher
    # through --die-with-parent.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _outcome(run: EngineRun, status: int, *, stopped: bool, reporter: JobReporter) -> dict:
    if status == 0 and run.result_file.is_file():
        return json.loads(run.result_file.read_text())
    tail = _tail(run.log_file)
    for line in tail:
        reporter.log(f"engine: {line}")
    if stopped:
        # Whatever the exit looked like, the stop was ours (cancel or a lost job).
        said = _said(tail, "stopped: ")
        raise Cancelled(said or "stopped on request")
    if status == EXIT_BAD_INPUT:
        raise BadInput(_said(tail, "error: bad input: ") or "the engine refused its input")
    if status == EXIT_DIVERGED:
        raise TrainingDiverged(_said(tail, "error: training diverged: ") or "training diverged")
    if status == 0:
        raise EngineProcessFailed(f"the engine exited without writing its result ({run.result_file})")
    how = f"killed by signal {status - 128}" if status > 128 else f"exit status {status}"
    last = " | ".join(tail[-8:]) if tail else "(no output)"
    raise EngineProcessFailed(f"training processes failed ({how}); last output: {last}")


def _said(lines: list[str], prefix: str) -> str | None:
    """The engine's own message after ``prefix`` (rank 0 prints it; others say 'rank N: ...')."""
    for line in reversed(lines):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    for line in reversed(lines):
        if prefix in line:
            return line.split(prefix, 1)[1].strip()
    return None


def _tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    if not path.is_file():
        return []
    with open(path, "rb") as file:
        file.seek(0, os.SEEK_END)
        file.seek(max(0, file.tell() - 64 * 1024))
        text = file.read().decode("utf-8", errors="replace")
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


class _JsonLinesTail:
    """New complete lines of a growing JSON Lines file, each decoded."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> Iterator[dict]:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            chunk = file.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                logger.warning("engine progress: skipped a line that is not JSON: %r", line[:200])
