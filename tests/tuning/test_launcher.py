"""DPO jobs trained by two engine processes (PREFLOOP_TRAIN_PROCESSES=2), watched by the runner.

The runner is the one the worker's task calls; the engine runs as a real child process group
(`python -m tuning.engine dpo --processes 2`, gloo on the CPU) on the tiny random model.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.db import connections

from tests.tuning.factories import frozen_set
from tuning.models import Adapter, BaseModel, Job, JobEvent
from tuning.services.adapters import adapter_folder_check
from tuning.services.jobs import job_cancel
from tuning.services.launch import job_launch
from tuning.services.launcher import _JsonLinesTail, _said
from tuning.services.runner import job_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_processes(settings, monkeypatch):
    settings.PREFLOOP_TRAIN_PROCESSES = 2
    settings.PREFLOOP_JOB_HEARTBEAT_S = 1
    settings.PREFLOOP_JOB_PROGRESS_FLUSH_MS = 200
    # One thread per rank: two ranks on a 2-core machine, and no oversubscription.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _dpo(project, admin_user, **params) -> Job:
    return job_launch(
        kind="dpo",
        project=project,
        created_by=admin_user,
        preference_set_id=frozen_set(project).pk,
        adapter_id=None,
        params={"max_steps": 4, "batch_size": 2, "evaluate": False, **params},
    )


def _train_steps(job: Job) -> list[int]:
    events = JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").order_by("id")
    return [event.data["step"] for event in events]


def test_a_dpo_job_in_two_processes_reports_each_step_and_registers_an_adapter_that_loads(
    tuning_project, admin_user, two_processes, settings
):
    job = _dpo(tuning_project, admin_user, grad_accum=2)
    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.progress == 1.0
    assert job.result["processes"] == 2 and job.result["steps"] == 4
    assert job.result["metrics"]["train_loss"] is not None
    # The same events as a job trained in the worker's own process: the page's charts read them.
    assert _train_steps(job) == [1, 2, 3, 4]
    first = JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").order_by("id").first()
    assert {"loss", "rewards/accuracies", "rewards/margins", "learning_rate"} <= set(first.data)
    assert "training in 2 processes" in job.log_tail
    assert [e.data["state"] for e in JobEvent.objects.filter(job=job, kind="state")] == ["queued", "running", "succeeded"]

    adapter = job.output_adapter
    assert adapter.job_id == job.pk and adapter.kind == Adapter.Kind.POLICY
    folder = Path(default_storage.path(adapter.path))
    meta = adapter_folder_check(folder, base_model=adapter.base_model)
    assert meta["processes"] == 2 and meta["steps"] == 4
    from tuning.engine.loading import load_policy

    model, _ = load_policy(tuning_project.base_model.source, adapter=folder)
    assert "default" in model.peft_config
    # The scratch folder (inputs, progress file, engine log) went with the finished job.
    assert not (Path(settings.PREFLOOP_JOB_DIR) / str(job.pk)).exists()


def test_a_job_the_engine_processes_refuse_fails_with_the_engines_reason_and_its_output(
    tuning_project, admin_user, two_processes
):
    job = _dpo(tuning_project, admin_user)
    # The base model's folder disappeared after the launch was checked.
    BaseModel.objects.filter(pk=tuning_project.base_model_id).update(source="/nowhere/model")
    assert job_run(job_id=job.pk, worker="test") == Job.State.FAILED
    job.refresh_from_db()
    assert "not found" in job.error and "/nowhere/model" in job.error
    # The engine's own output is in the job's log, for whoever looks into it.
    assert "engine: error: bad input:" in job.log_tail
    assert not Adapter.objects.filter(job=job).exists()


def test_cancel_stops_both_processes_within_a_step_and_leaves_no_adapter(tuning_project, admin_user, two_processes):
    job = _dpo(tuning_project, admin_user, max_steps=500, checkpoint_every=2)
    asked: dict = {}

    def cancel_once_training() -> None:
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                current = Job.objects.get(pk=job.pk)
                if current.state == Job.State.RUNNING and current.step >= 3:
                    job_cancel(job=current)
                    asked["at_step"] = current.step
                    return
                time.sleep(0.1)
        finally:
            connections.close_all()

    canceller = threading.Thread(target=cancel_once_training)
    canceller.start()
    started = time.monotonic()
    final = job_run(job_id=job.pk, worker="test")
    canceller.join(timeout=10)
    assert final == Job.State.CANCELLED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert job.error.startswith("Cancelled: stopped on request during train at step")
    # The flag is read at each step's event: the engine stops a few steps after it at most
    # (the progress file is read every 0.2 s, a tiny step takes milliseconds).
    assert asked["at_step"] <= job.step < 500
    assert time.monotonic() - started < 120
    assert not Adapter.objects.filter(job=job).exists()


def test_progress_lines_are_read_whole_even_when_the_writer_is_mid_line(tmp_path):
    path = tmp_path / "progress.jsonl"
    tail = _JsonLinesTail(path)
    assert list(tail.read()) == []
    path.write_bytes(b'{"step": 1}\n{"st')
    assert list(tail.read()) == [{"step": 1}]
    with open(path, "ab") as file:
        file.write(b'ep": 2}\n')
    assert list(tail.read()) == [{"step": 2}]
    assert list(tail.read()) == []


def test_the_engines_message_is_rank_0s_line_or_another_ranks():
    lines = ["W1130 launcher noise", "rank 1: error: bad input: no rows", "error: bad input: the set is empty"]
    assert _said(lines, "error: bad input: ") == "the set is empty"
    assert _said(lines[:2], "error: bad input: ") == "no rows"
    assert _said(lines[:1], "error: bad input: ") is None


def test_a_retried_job_resumes_in_two_processes_from_the_checkpoint_its_last_attempt_left(
    tuning_project, admin_user, two_processes, settings
):
    from tuning.engine.dpo import train_dpo
    from tuning.services.data import preference_rows
    from tuning.services.training import dpo_config

    job = _dpo(tuning_project, admin_user, max_steps=6, checkpoint_every=2)
    # Attempt 1 trained in the worker's own process and died during step 3 (as a killed worker
    # does), leaving the checkpoint of step 2 in the job's folder.
    rows = preference_rows(job.preference_set)

    def die_at_step_3(event: dict) -> None:
        if event.get("phase") == "train" and event.get("step") == 3:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        train_dpo(
            source=tuning_project.base_model.source, rows=rows, output_dir=Path(settings.PREFLOOP_JOB_DIR) / "lost",
            config=dpo_config(job.params, n_rows=len(rows), checkpoints=True),
            checkpoint_dir=Path(settings.PREFLOOP_JOB_DIR) / str(job.pk) / "checkpoints", progress=die_at_step_3,
        )
    Job.objects.filter(pk=job.pk).update(attempts=1)

    assert job_run(job_id=job.pk, worker="test") == Job.State.SUCCEEDED, Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.attempts == 2 and job.result["resumed_from"] == "step-000002" and job.result["processes"] == 2
    assert _train_steps(job) == [3, 4, 5, 6]
    assert job.output_adapter.metadata["steps"] == 6


def _descendants(pid: int) -> list[int]:
    """This process's children, grandchildren ... (from /proc: only what this test started)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # The command may hold spaces and parentheses: the fields after its last ")" count.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def test_a_rank_killed_mid_run_fails_the_job_with_the_cause_and_the_engines_last_output(
    tuning_project, admin_user, two_processes
):
    import os
    import signal

    job = _dpo(tuning_project, admin_user, max_steps=500)
    killed: list[int] = []

    def kill_a_rank_once_training() -> None:
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, step__gte=3).exists():
                    # The launcher is this process's child; the ranks are its children.
                    ranks = [
                        pid for pid in _descendants(os.getpid())
                        if b"tuning.engine" in Path(f"/proc/{pid}/cmdline").read_bytes()
                        and b"--processes" not in Path(f"/proc/{pid}/cmdline").read_bytes()
                    ]
                    if ranks:
                        # As the kernel's OOM killer would.
                        os.kill(ranks[-1], signal.SIGKILL)
                        killed.append(ranks[-1])
                        return
                time.sleep(0.1)
        finally:
            connections.close_all()

    killer = threading.Thread(target=kill_a_rank_once_training)
    killer.start()
    final = job_run(job_id=job.pk, worker="test")
    killer.join(timeout=10)
    assert killed, "no rank was found to kill"
    assert final == Job.State.FAILED
    job.refresh_from_db()
    assert job.error.startswith("training processes failed (killed by signal 9); last output:"), job.error
    assert "engine: " in job.log_tail
    assert not Adapter.objects.filter(job=job).exists()
    # Nothing of the run is left behind: the other rank ended with its launcher.
    time.sleep(1)
    assert not [pid for pid in _descendants(os.getpid()) if b"tuning.engine" in Path(f"/proc/{pid}/cmdline").read_bytes()]
