"""A real Celery worker runs jobs end to end, and survives what real workers meet.

Each test starts `celery -A workers worker -Q gpu,default -c 1` against a Redis of its own and
the test database (PostgreSQL in CI, a SQLite file locally), launches jobs through the same
service the API uses, and watches the database, which is the record.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from prefs.services.assignment import comparison_next_for
from prefs.services.judging import Verdict, judgment_record
from tests.tuning.factories import frozen_set
from tests.workers.conftest import wait_for
from tuning.models import Adapter, Evaluation, EvaluationPair, Job, JobEvent
from tuning.services.adapters import adapter_folder_check
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db(transaction=True)

# Seconds: a worker's first job imports torch and friends, which is slow on a busy 2-core box.
FIRST_JOB_S = 240


def _state(job: Job) -> str:
    job.refresh_from_db()
    return job.state


def _dpo(project, user, **params) -> Job:
    return job_launch(
        kind="dpo",
        project=project,
        created_by=user,
        preference_set_id=frozen_set(project).pk,
        params={"batch_size": 2, "max_steps": 6, "evaluate": False, **params},
    )


def _assert_complete(adapter: Adapter) -> None:
    """Registered means whole: config, weights and metadata, for the right base model."""
    folder = Path(default_storage.path(adapter.path))
    adapter_folder_check(folder, base_model=adapter.base_model)
    assert (folder / "prefloop.json").is_file()


def test_a_dpo_job_runs_on_a_real_worker_and_its_evaluation_reaches_reviewers(
    tuning_project, admin_user, reviewer, start_worker
):
    worker = start_worker()
    # A large learning rate moves the tiny model enough that before and after answer differently.
    job = _dpo(tuning_project, admin_user, max_steps=6, evaluate=True, learning_rate=0.05, eval_max_new_tokens=8)
    assert job.state == Job.State.QUEUED

    wait_for(lambda: _state(job) in Job.FINAL_STATES, timeout=FIRST_JOB_S, what="the DPO job to finish", workers=[worker])
    assert job.state == Job.State.SUCCEEDED, job.error
    states = [e.data["state"] for e in JobEvent.objects.filter(job=job, kind="state").order_by("id")]
    assert states == ["queued", "running", "succeeded"]
    steps = list(
        JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").order_by("id").values_list("data__step", flat=True)
    )
    assert steps == [1, 2, 3, 4, 5, 6]
    assert job.progress == 1.0 and job.attempts == 1

    adapter = job.output_adapter
    assert adapter.job_id == job.pk and adapter.parent is None
    assert adapter.preference_set_id == job.preference_set_id and adapter.base_model_id == tuning_project.base_model_id
    _assert_complete(adapter)

    evaluate = Job.objects.get(source_job=job)
    wait_for(lambda: _state(evaluate) in Job.FINAL_STATES, timeout=FIRST_JOB_S, what="the evaluation", workers=[worker])
    assert evaluate.state == Job.State.SUCCEEDED, evaluate.error
    evaluation = Evaluation.objects.get(job=evaluate)
    pair_ids = set(EvaluationPair.objects.filter(evaluation=evaluation).values_list("comparison_id", flat=True))
    assert len(pair_ids) == 3

    offered = set()
    while (assignment := comparison_next_for(reviewer=reviewer, project=tuning_project)) is not None:
        offered.add(assignment.comparison_id)
        judgment_record(reviewer=reviewer, assignment_id=assignment.pk, verdict=Verdict(choice="tie"))
    assert pair_ids <= offered

    body = APIClient()
    body.force_authenticate(admin_user)
    read = body.get(f"/api/v1/evaluations/{evaluation.pk}/").json()
    before = next(arm for arm in read["win_rate"] if arm["arm"] == "before")
    assert before["n"] == 3 and before["ties"] == 3 and before["rate"] == 0.5
    assert before["low"] < 0.5 < before["high"]

    # What the admin sees: the curves of the run, and the verdict with its interval.
    web = Client()
    web.force_login(admin_user)
    job_page = web.get(f"/jobs/{job.pk}/").content.decode()
    assert job_page.count("<polyline") == 3 and "Loss: " in job_page and "at step 6" in job_page
    evaluation_page = web.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "50%" in evaluation_page and "Drift from the parent" in evaluation_page


def test_a_worker_killed_during_training_is_noticed_and_the_job_resumes_from_its_checkpoint(
    tuning_project, admin_user, start_worker, settings
):
    first = start_worker()
    # Enough steps that a fast machine is still training when the first checkpoint shows.
    job = _dpo(tuning_project, admin_user, max_steps=200, checkpoint_every=5)
    job_dir = Path(settings.PREFLOOP_JOB_DIR) / str(job.pk)
    checkpoints = job_dir / "checkpoints"
    wait_for(
        lambda: checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir()) and _state(job) == "running",
        timeout=FIRST_JOB_S, what="a first checkpoint", workers=[first],
    )
    first.kill()
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING  # nobody can know yet: only the heartbeat will tell
    killed_at_step = job.step

    second = start_worker()
    wait_for(lambda: _state(job) in Job.FINAL_STATES, timeout=FIRST_JOB_S, what="the retried job", workers=[first, second])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.attempts == 2
    assert job.result["resumed_from"].startswith("step-"), job.result
    resumed_step = int(job.result["resumed_from"].split("-")[1])
    assert 5 <= resumed_step <= max(killed_at_step, 5) + 5
    second_run = list(
        JobEvent.objects.filter(job=job, attempt=2, kind="metrics", data__phase="train").order_by("id").values_list("data__step", flat=True)
    )
    assert second_run == list(range(resumed_step + 1, 201))
    assert "no heartbeat" in "\n".join(JobEvent.objects.filter(job=job, kind="state").values_list("data__reason", flat=True).exclude(data__reason=None))
    assert Adapter.objects.filter(job=job).count() == 1
    for adapter in Adapter.objects.all():
        _assert_complete(adapter)
    assert not job_dir.exists()


def test_a_killed_job_without_retries_left_is_marked_failed_with_the_reason(tuning_project, admin_user, start_worker, settings):
    settings.PREFLOOP_JOB_MAX_ATTEMPTS = 1
    worker = start_worker()
    job = _dpo(tuning_project, admin_user, max_steps=200)
    wait_for(lambda: _state(job) == "running" and job.step >= 2, timeout=FIRST_JOB_S, what="training to start", workers=[worker])
    worker.kill()

    # No worker is left: reading the job list is what notices the silence.
    client = APIClient()
    client.force_authenticate(admin_user)

    def listed_state():
        return next(j["state"] for j in client.get("/api/v1/jobs/").json() if j["id"] == job.pk) != "running"

    wait_for(listed_state, timeout=30, what="the reaper to notice", workers=[worker])
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert "no heartbeat" in job.error
    assert not Adapter.objects.filter(job=job).exists()


def test_cancel_stops_a_running_job_within_one_step(tuning_project, admin_user, start_worker):
    worker = start_worker()
    job = _dpo(tuning_project, admin_user, max_steps=500)
    wait_for(lambda: _state(job) == "running" and job.step >= 3, timeout=FIRST_JOB_S, what="training to start", workers=[worker])
    client = APIClient()
    client.force_authenticate(admin_user)
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").json()["cancel_requested"] is True
    # The cancel is on record once the API answered (its UPDATE may wait behind a progress
    # write; the step that finishes meanwhile was asked for before the cancel was recorded).
    accepted = timezone.now()

    wait_for(lambda: _state(job) in Job.FINAL_STATES, timeout=60, what="the job to stop", workers=[worker])
    assert job.state == Job.State.CANCELLED
    steps_after_cancel = JobEvent.objects.filter(
        job=job, kind="metrics", data__phase="train", created_at__gt=accepted
    ).count()
    assert steps_after_cancel <= 1
    assert job.step < 500
    assert not Adapter.objects.filter(job=job).exists()


def test_a_job_queued_while_the_broker_is_down_runs_when_it_returns(tuning_project, admin_user, start_worker, redis_server):
    worker = start_worker()
    # The worker is up and connected: warm it with a first job so the second is quick.
    warm = _dpo(tuning_project, admin_user, max_steps=1)
    wait_for(lambda: _state(warm) in Job.FINAL_STATES, timeout=FIRST_JOB_S, what="a first job", workers=[worker])

    redis_server.stop()
    job = _dpo(tuning_project, admin_user, max_steps=2)
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and job.dispatched_at is None  # the broker did not take it

    redis_server.start()  # an empty Redis: nothing about the job survived in the broker
    wait_for(lambda: _state(job) in Job.FINAL_STATES, timeout=120, what="the job to run after the broker returned", workers=[worker])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.dispatch_count >= 1 and job.attempts == 1


def test_a_worker_set_to_train_in_two_processes_runs_dpo_jobs_and_cancels_them(
    tuning_project, admin_user, start_worker, worker_env
):
    worker_env["PREFLOOP_TRAIN_PROCESSES"] = "2"
    worker = start_worker()
    job = _dpo(tuning_project, admin_user, max_steps=4, grad_accum=2)
    wait_for(lambda: _state(job) in Job.FINAL_STATES, timeout=FIRST_JOB_S, what="the DPO job to finish", workers=[worker])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["processes"] == 2
    steps = list(
        JobEvent.objects.filter(job=job, kind="metrics", data__phase="train").order_by("id").values_list("data__step", flat=True)
    )
    assert steps == [1, 2, 3, 4]
    _assert_complete(job.output_adapter)
    assert job.output_adapter.metadata["processes"] == 2

    running = _dpo(tuning_project, admin_user, max_steps=500)
    wait_for(lambda: _state(running) == "running" and running.step >= 3, timeout=120, what="training to start", workers=[worker])
    client = APIClient()
    client.force_authenticate(admin_user)
    assert client.post(f"/api/v1/jobs/{running.pk}/cancel/").json()["cancel_requested"] is True
    wait_for(lambda: _state(running) in Job.FINAL_STATES, timeout=60, what="the job to stop", workers=[worker])
    assert running.state == Job.State.CANCELLED, running.error
    assert running.step < 500
    assert not Adapter.objects.filter(job=running).exists()


def _engine_processes_of(folder: Path) -> list[int]:
    """Processes whose command line names this job's folder: the engine run for it, nobody else's."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"tuning.engine" in command and str(folder).encode() in command:
                found.append(int(entry.name))
    return found


def test_a_worker_killed_while_two_engine_processes_train_leaves_no_training_behind(
    tuning_project, admin_user, start_worker, worker_env, settings
):
    worker_env["PREFLOOP_TRAIN_PROCESSES"] = "2"
    worker = start_worker()
    job = _dpo(tuning_project, admin_user, max_steps=100000)
    folder = Path(settings.PREFLOOP_JOB_DIR) / str(job.pk)
    wait_for(lambda: _state(job) == "running" and job.step >= 3, timeout=FIRST_JOB_S, what="training to start", workers=[worker])
    assert len(_engine_processes_of(folder)) == 3  # the launcher and two ranks
    worker.kill()
    # The kernel ends the launcher with the worker and the ranks with the launcher; an orphan
    # would keep writing checkpoints into the folder while the job's retry trains there.
    wait_for(lambda: not _engine_processes_of(folder), timeout=15, what="the engine processes to end", workers=[worker])
