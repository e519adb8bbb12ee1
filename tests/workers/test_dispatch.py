"""The outbox against a real Redis: what the database queued reaches the broker, once it is up."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from tests.tuning.factories import frozen_set
from tuning.models import Job
from tuning.services.jobs import job_dispatch, jobs_dispatch_pending
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(tuning_project, admin_user, settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    # job_launch sends on commit; inside this test's transaction nothing commits, so the job
    # stays undispatched until the test sends it.
    return job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=frozen_set(tuning_project).pk
    )


def _queued(redis_server) -> int:
    return redis.Redis(port=redis_server.port).llen("gpu")


def test_a_queued_job_reaches_the_gpu_queue_once(job, redis_server):
    assert job.dispatched_at is None
    assert job_dispatch(job_id=job.pk) is True
    assert job_dispatch(job_id=job.pk) is False  # already sent: a second dispatcher does nothing
    assert _queued(redis_server) == 1
    job.refresh_from_db()
    assert job.dispatched_at is not None and job.dispatch_count == 1


def test_the_dispatcher_sends_what_the_broker_missed_when_it_returns(job, redis_server):
    redis_server.stop()
    assert jobs_dispatch_pending() == 0
    redis_server.start()
    assert jobs_dispatch_pending() == 1
    assert _queued(redis_server) == 1


def test_an_unclaimed_job_is_resent_after_a_while_with_backoff(job, redis_server, settings):
    settings.PREFLOOP_JOB_REDISPATCH_S = 60
    assert job_dispatch(job_id=job.pk) is True
    assert jobs_dispatch_pending() == 0  # sent a moment ago: give a worker time
    # A Redis restart without persistence lost the message; nobody claimed the job.
    redis_server.stop()
    redis_server.start()
    later = timezone.now() + timedelta(seconds=61)
    assert jobs_dispatch_pending(now=later) == 1
    assert _queued(redis_server) == 1
    # The next resend waits twice as long.
    assert jobs_dispatch_pending(now=later + timedelta(seconds=61)) == 0
    assert jobs_dispatch_pending(now=later + timedelta(seconds=121)) == 1
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and job.dispatch_count == 3
