"""What the engine's progress callback leaves in the database, and how a run learns to stop."""

from __future__ import annotations

import time

import pytest

from tests.tuning.factories import frozen_set
from tuning.models import Job, JobEvent
from tuning.services.jobs import job_claim, job_reap_stale
from tuning.services.launch import job_launch
from tuning.services.progress import JobReporter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running(tuning_project, admin_user):
    job = job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=frozen_set(tuning_project).pk
    )
    return job_claim(job_id=job.pk, worker="test")


def _train(step: int, total: int = 50) -> dict:
    return {"phase": "train", "step": step, "total_steps": total, "progress": step / total, "eta_s": 50.0 - step,
            "loss": 1.0 / step, "rewards/margins": step / 10, "message": "halfway" if step == 25 else None}


def test_every_step_arrives_in_order_with_progress_eta_and_log(running):
    with JobReporter(running, flush_s=60, heartbeat_s=60) as reporter:
        for step in range(1, 51):
            assert reporter.callback(_train(step)) is False
    running.refresh_from_db()
    steps = list(JobEvent.objects.filter(job=running, kind="metrics").order_by("id").values_list("data__step", flat=True))
    assert steps == list(range(1, 51))
    assert running.progress == 1.0 and running.step == 50 and running.eta_s == 0.0
    assert "[train] halfway" in running.log_tail


def test_progress_maps_each_engine_call_into_its_share_of_the_job(running):
    with JobReporter(running, flush_s=0, heartbeat_s=60) as reporter:
        reporter.stage(0.0, 0.5, {"prepare": (0.0, 0.2), "train": (0.2, 1.0)})
        reporter.callback({"phase": "prepare", "progress": 1.0})
        running.refresh_from_db()
        assert running.progress == pytest.approx(0.1)
        reporter.callback({"phase": "train", "progress": 0.5})
        running.refresh_from_db()
        assert running.progress == pytest.approx(0.3)
        reporter.stage(0.5, 1.0)
        reporter.callback({"phase": "generate", "progress": 0.0})
        running.refresh_from_db()
        assert running.progress == pytest.approx(0.5)


def test_the_eta_takes_the_phase_in_progress_at_its_own_measured_pace(running):
    with JobReporter(running, flush_s=0, heartbeat_s=60) as reporter:
        reporter.stage(0.0, 1.0, {"generate-after": (0.0, 0.5), "drift": (0.5, 1.0)})
        time.sleep(0.2)
        # Half of generation done; the engine measured 30 s left of it (its batches are slow).
        reporter.callback({"phase": "generate-after", "progress": 0.5, "eta_s": 30.0})
        running.refresh_from_db()
        elapsed = reporter.elapsed_s()
        assert running.progress == pytest.approx(0.25)
        # 30 s of generation, then drift's half of the bar at the pace measured so far.
        assert 30.0 + 0.5 * 0.2 / 0.25 <= running.eta_s <= 30.0 + 0.5 * elapsed / 0.25 + 0.1


def test_a_cancel_request_stops_the_run_at_the_next_step(running):
    with JobReporter(running, flush_s=60, heartbeat_s=60) as reporter:
        assert reporter.callback(_train(1)) is False
        Job.objects.filter(pk=running.pk).update(cancel_requested=True)
        assert reporter.callback(_train(2)) is True


def test_a_run_whose_job_was_reaped_stops_and_writes_nothing_more(running):
    with JobReporter(running, flush_s=0, heartbeat_s=60) as reporter:
        reporter.callback(_train(1))
        Job.objects.filter(pk=running.pk).update(heartbeat_at=None)
        assert job_reap_stale() == [(running.pk, "requeued")]
        assert reporter.callback(_train(2)) is True
        assert reporter.lost
    running.refresh_from_db()
    assert running.state == Job.State.QUEUED and running.step == 1


def test_the_heartbeat_beats_while_the_engine_is_silent(running):
    Job.objects.filter(pk=running.pk).update(heartbeat_at=None)
    with JobReporter(running, flush_s=60, heartbeat_s=0.2):
        time.sleep(1.0)  # a long model load: no callback at all
    running.refresh_from_db()
    assert running.heartbeat_at is not None
    assert job_reap_stale(stale_after_s=60) == []
