"""The job, adapter and evaluation API: who may call it, launching with reasons, reading back."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.tuning.factories import frozen_set
from tuning.models import Adapter, Evaluation, Job
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def queued_job(tuning_project, admin_user):
    return job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user,
        preference_set_id=frozen_set(tuning_project).pk,
    )


@pytest.fixture
def adapter(tuning_project):
    return Adapter.objects.create(base_model=tuning_project.base_model, project=tuning_project, name="v1-dpo", path="adapters/x")


@pytest.fixture
def evaluation(tuning_project, adapter, admin_user):
    job = job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=adapter.pk)
    return Evaluation.objects.get(job=job)


ENDPOINTS = [
    ("get", "/api/v1/jobs/"),
    ("post", "/api/v1/jobs/"),
    ("get", "/api/v1/jobs/{job}/"),
    ("get", "/api/v1/jobs/{job}/events/"),
    ("post", "/api/v1/jobs/{job}/cancel/"),
    ("get", "/api/v1/adapters/"),
    ("get", "/api/v1/adapters/{adapter}/"),
    ("post", "/api/v1/adapters/{adapter}/promote/"),
    ("post", "/api/v1/projects/{project}/rollback/"),
    ("get", "/api/v1/evaluations/{evaluation}/"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_only_admins_may_call_the_tuning_api(method, path, queued_job, adapter, evaluation, reviewer, outsider):
    url = path.format(job=queued_job.pk, adapter=adapter.pk, project=queued_job.project_id, evaluation=evaluation.pk)
    assert getattr(_client(), method)(url, {}, format="json").status_code == 401
    assert getattr(_client(reviewer), method)(url, {}, format="json").status_code == 403
    assert getattr(_client(outsider), method)(url, {}, format="json").status_code == 403
    Job.objects.filter(pk=queued_job.pk).update()  # the job is untouched by the refusals
    assert Job.objects.get(pk=queued_job.pk).state == Job.State.QUEUED


def test_an_admin_launches_a_dpo_job_and_reads_it_back(tuning_project, admin_user):
    preference_set = frozen_set(tuning_project)
    response = _client(admin_user).post(
        "/api/v1/jobs/",
        {"kind": "dpo", "project": tuning_project.pk, "preference_set": preference_set.pk, "adapter": None,
         "params": {"beta": 0.2, "max_steps": 3}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "queued" and body["progress"] == 0.0
    assert body["params"]["beta"] == 0.2 and body["params"]["learning_rate"] == 5e-5
    assert body["output_adapter"] is None and body["evaluation"] is None
    again = _client(admin_user).get(f"/api/v1/jobs/{body['id']}/").json()
    assert again["id"] == body["id"] and again["kind"] == "dpo"
    events = _client(admin_user).get(f"/api/v1/jobs/{body['id']}/events/").json()
    assert [e["data"]["state"] for e in events["events"]] == ["queued"]
    listed = _client(admin_user).get(f"/api/v1/jobs/?project={tuning_project.pk}").json()
    assert [job["id"] for job in listed] == [body["id"]]


def test_an_empty_preference_set_is_refused_with_the_reason(tuning_project, admin_user):
    from prefs.services.snapshots import FreezeRule, preference_set_freeze

    empty = preference_set_freeze(project=tuning_project, rule=FreezeRule(min_judgments=5))
    response = _client(admin_user).post(
        "/api/v1/jobs/", {"kind": "dpo", "project": tuning_project.pk, "preference_set": empty.pk}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["field"] == "preference_set"
    assert "empty" in body["errors"][0]["message"]
    assert not Job.objects.exists()


def test_an_adapter_of_another_base_model_is_refused_with_the_reason(tuning_project, admin_user, other_tiny_source):
    from tests.tuning.factories import tiny_base_model

    other_base = tiny_base_model(other_tiny_source, name="other-base")
    foreign = Adapter.objects.create(base_model=other_base, name="foreign", path="adapters/y")
    response = _client(admin_user).post(
        "/api/v1/jobs/",
        {"kind": "dpo", "project": tuning_project.pk, "preference_set": frozen_set(tuning_project).pk, "adapter": foreign.pk},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "adapter"
    assert "other-base" in error["message"] and "tiny-llama" in error["message"]


def test_unknown_and_out_of_range_params_are_refused_by_name(tuning_project, admin_user):
    response = _client(admin_user).post(
        "/api/v1/jobs/",
        {"kind": "dpo", "project": tuning_project.pk, "preference_set": frozen_set(tuning_project).pk,
         "params": {"beta": -1, "learning_rte": 0.1}},
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"params.beta", "params.learning_rte"}


def test_evaluate_is_refused_when_the_project_has_no_held_out_prompts(project, admin_user, tiny_source, media):
    from tests.tuning.factories import tiny_base_model

    project.base_model = tiny_base_model(tiny_source)
    project.save()
    adapter = Adapter.objects.create(base_model=project.base_model, project=project, name="a", path="x")
    response = _client(admin_user).post(
        "/api/v1/jobs/", {"kind": "evaluate", "project": project.pk, "adapter": adapter.pk}, format="json"
    )
    assert response.status_code == 400
    assert "held-out" in response.json()["detail"]


def test_cancelling_a_queued_job_cancels_it_and_a_second_cancel_says_why_not(queued_job, admin_user):
    first = _client(admin_user).post(f"/api/v1/jobs/{queued_job.pk}/cancel/")
    assert first.status_code == 200 and first.json()["state"] == "cancelled"
    second = _client(admin_user).post(f"/api/v1/jobs/{queued_job.pk}/cancel/")
    assert second.status_code == 409
    assert "already cancelled" in second.json()["detail"]


def test_the_adapter_api_shows_lineage_and_promotion_and_rollback_work(tuning_project, admin_user, adapter):
    child = Adapter.objects.create(base_model=adapter.base_model, project=tuning_project, name="v2-dpo", parent=adapter, path="z")
    client = _client(admin_user)
    detail = client.get(f"/api/v1/adapters/{child.pk}/").json()
    assert [a["name"] for a in detail["ancestors"]] == ["v1-dpo"]
    assert client.get(f"/api/v1/adapters/{adapter.pk}/").json()["children"] == [{"id": child.pk, "name": "v2-dpo"}]
    assert client.post(f"/api/v1/adapters/{adapter.pk}/promote/", {}, format="json").json()["active_adapter"] == adapter.pk
    assert client.post(f"/api/v1/adapters/{child.pk}/promote/", {}, format="json").json()["previous"] == adapter.pk
    assert client.get("/api/v1/adapters/").json()[1]["active_in"] == [tuning_project.pk]
    back = client.post(f"/api/v1/projects/{tuning_project.pk}/rollback/").json()
    assert back["active_adapter"] == adapter.pk and back["is_rollback"] is True
    tuning_project.refresh_from_db()
    assert tuning_project.active_adapter == adapter
    assert Adapter.objects.filter(pk=child.pk).exists()
