"""/metrics: who may read it, and that its numbers follow what happens (requests, queues, jobs,
judgments), read back through Prometheus's own text parser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from prefs.models import Judgment
from prefs.services.assignment import comparison_next_for
from prefs.services.judging import Verdict, judgment_record
from tests.factories import make_comparisons, make_reviewers
from tuning.models import BaseModel, Job
from tuning.services.jobs import job_dispatch

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- access -------------------------------------------------------------------------------------


def test_without_a_token_only_this_machine_may_read(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert refused.status_code == 403
    assert b"METRICS_TOKEN" in refused.content


def test_with_a_token_the_bearer_must_match_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Token s3cret-metrics-token"}):
        answer = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
        assert answer.status_code == 401, headers
        assert answer["WWW-Authenticate"].startswith("Bearer")
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert ok.status_code == 200
    assert b"prefloop_jobs" in ok.content


def test_a_reviewer_session_does_not_open_metrics(client, settings, reviewer):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    client.force_login(reviewer)
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 401


# -- requests -----------------------------------------------------------------------------------


def test_requests_are_counted_by_view_and_status(client):
    before = scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page/")
    after = scrape(client)
    ok = ("prefloop_http_requests_total", dict(view="healthz", method="GET", status="200"))
    assert value(after, ok[0], **ok[1]) - value(before, ok[0], **ok[1]) == 2
    missing = dict(view="unmatched", method="GET", status="404")
    assert value(after, "prefloop_http_requests_total", **missing) - value(before, "prefloop_http_requests_total", **missing) == 1
    count = value(after, "prefloop_http_request_duration_seconds_count", view="healthz", method="GET")
    assert count - value(before, "prefloop_http_request_duration_seconds_count", view="healthz", method="GET") == 2


# -- jobs and judgments --------------------------------------------------------------------------


def _job(project, base, state):
    return Job.objects.create(kind="dpo", state=state, project=project, base_model=base)


def test_jobs_are_counted_by_state_and_kind(client, project):
    base = BaseModel.objects.create(name="m", source="/nowhere")
    for state in ("queued", "queued", "running", "failed"):
        _job(project, base, state)
    Job.objects.filter(state="queued").update(created_at=timezone.now() - timedelta(minutes=3))
    samples = scrape(client)
    assert value(samples, "prefloop_jobs", state="queued", kind="dpo") == 2
    assert value(samples, "prefloop_jobs", state="running", kind="dpo") == 1
    assert value(samples, "prefloop_jobs", state="failed", kind="dpo") == 1
    assert ("prefloop_jobs", (("kind", "generate"), ("state", "succeeded"))) in samples  # zeros are there too
    assert 170 <= value(samples, "prefloop_job_oldest_queued_seconds") <= 3600


def test_judgments_per_minute_counts_recent_reviewer_judgments(client, project, django_user_model):
    make_comparisons(project, 4)
    for person in make_reviewers(django_user_model, project, 3):
        assignment = comparison_next_for(reviewer=person, project=project)
        judgment_record(reviewer=person, assignment_id=assignment.pk, verdict=Verdict(choice="left"))
    # Neither an imported label nor a judgment from an hour ago counts.
    comparison = make_comparisons(project, 1, prefix="old")[0]
    Judgment.objects.create(comparison=comparison, imported=True, choice="A")
    old = Judgment.objects.filter(imported=False).first()
    Judgment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    samples = scrape(client)
    assert value(samples, "prefloop_judgments_per_minute") == pytest.approx(2 / 5)


# -- queue depth ----------------------------------------------------------------------------------


def test_queue_depth_on_redis_follows_dispatched_jobs_and_their_routes(client, project, settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    settings.PREFLOOP_JOB_QUEUES = {"big-8b": "gpu-80g"}
    small = BaseModel.objects.create(name="small-135m", source="/nowhere")
    big = BaseModel.objects.create(name="big-8b", source="/nowhere")
    jobs = [_job(project, small, "queued"), _job(project, small, "queued"), _job(project, big, "queued")]
    for job in jobs:
        assert job_dispatch(job_id=job.pk)
    samples = scrape(client)
    assert value(samples, "prefloop_broker_up") == 1
    assert value(samples, "prefloop_queue_depth", queue="gpu") == 2
    assert value(samples, "prefloop_queue_depth", queue="gpu-80g") == 1
    assert value(samples, "prefloop_queue_depth", queue="default") == 0


def test_queue_depth_on_the_embedded_broker_counts_message_files(client, settings, tmp_path):
    folder = tmp_path / "broker"
    for sub in ("queue", "processed"):
        (folder / sub).mkdir(parents=True)
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_DIR = folder
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        # Exchange tables of the test's own (Kombu's default is ./control, shared by everyone).
        "control_folder": str(folder / "control"),
    }
    with Connection("filesystem://", transport_options=options) as conn:
        gpu, default = conn.SimpleQueue("gpu"), conn.SimpleQueue("default")
        for n in range(3):
            gpu.put({"n": n})
        default.put({"n": 0})
        samples = scrape(client)
        assert value(samples, "prefloop_queue_depth", queue="gpu") == 3
        assert value(samples, "prefloop_queue_depth", queue="default") == 1
        gpu.get(timeout=5).ack()
        assert value(scrape(client), "prefloop_queue_depth", queue="gpu") == 2
        gpu.close()
        default.close()


def test_a_broker_that_is_down_reads_as_down_and_the_rest_still_answers(client, settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    redis_server.stop()
    samples = scrape(client)
    assert value(samples, "prefloop_broker_up") == 0
    assert not any(name == "prefloop_queue_depth" for name, _ in samples)
    assert ("prefloop_jobs", (("kind", "dpo"), ("state", "queued"))) in samples
