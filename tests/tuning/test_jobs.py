"""A job's life in the database: claim, heartbeat, the reaper, cancel, the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.tuning.factories import frozen_set
from tuning.models import Job, JobEvent
from tuning.services.jobs import (
    JobError,
    job_cancel,
    job_claim,
    job_dispatch,
    job_heartbeat,
    job_progress_write,
    job_reap_stale,
    jobs_dispatch_pending,
)
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tuning_project, admin_user):
    return job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=frozen_set(tuning_project).pk
    )


def _states(job) -> list[str]:
    return list(JobEvent.objects.filter(job=job, kind="state").order_by("id").values_list("data__state", flat=True))


def test_a_job_is_claimed_once_however_often_its_message_arrives(job):
    first = job_claim(job_id=job.pk, worker="w1")
    assert first is not None and first.state == Job.State.RUNNING and first.attempts == 1
    assert job_claim(job_id=job.pk, worker="w2") is None
    job.refresh_from_db()
    assert job.worker == "w1"
    assert _states(job) == ["queued", "running"]


def test_a_cancelled_queued_job_is_never_claimed(job, admin_user):
    job_cancel(job=job, by=admin_user)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert job_claim(job_id=job.pk, worker="w1") is None


def test_cancelling_a_running_job_asks_it_to_stop_and_a_finished_one_cannot_be_cancelled(job, admin_user):
    running = job_claim(job_id=job.pk, worker="w1")
    job_cancel(job=running, by=admin_user)
    running.refresh_from_db()
    assert running.state == Job.State.RUNNING and running.cancel_requested
    assert job_heartbeat(job=running) == (True, True)
    Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED)
    with pytest.raises(JobError, match="already succeeded"):
        job_cancel(job=running, by=admin_user)


def test_a_silent_running_job_goes_back_to_the_queue_while_retries_remain(job):
    running = job_claim(job_id=job.pk, worker="w1")
    later = timezone.now() + timedelta(seconds=500)
    assert job_reap_stale(now=later, stale_after_s=120) == [(job.pk, "requeued")]
    running.refresh_from_db()
    assert running.state == Job.State.QUEUED and running.dispatched_at is None
    assert "no heartbeat" in running.error
    second = job_claim(job_id=job.pk, worker="w2")
    assert second.attempts == 2
    # The lost first run can write nothing any more: its attempt is no longer the job's.
    stale_run = Job(pk=job.pk, attempts=1)
    assert job_progress_write(job=stale_run, fields={"progress": 0.9}, events=[], log_lines=[]) is False
    assert job_heartbeat(job=stale_run) == (False, False)


def test_a_silent_job_without_retries_left_fails_with_the_reason(job):
    Job.objects.filter(pk=job.pk).update(max_attempts=1)
    job_claim(job_id=job.pk, worker="w1")
    assert job_reap_stale(now=timezone.now() + timedelta(seconds=500), stale_after_s=120) == [(job.pk, "failed")]
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.finished_at is not None
    assert "Worker w1 lost: no heartbeat" in job.error
    assert _states(job)[-1] == "failed"


def test_a_job_with_a_fresh_heartbeat_is_left_alone(job):
    running = job_claim(job_id=job.pk, worker="w1")
    assert job_heartbeat(job=running) == (True, False)
    assert job_reap_stale(stale_after_s=120) == []
    running.refresh_from_db()
    assert running.state == Job.State.RUNNING


def test_a_job_launched_while_the_broker_is_down_stays_queued_and_undispatched(job, settings):
    # Nothing listens on port 1: the send fails at once and the launch does not wait for it.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert job_dispatch(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and job.dispatched_at is None and job.dispatch_count == 1
    assert jobs_dispatch_pending() == 0
    job.refresh_from_db()
    assert job.dispatch_count == 2
