"""The admin pages of tuning: jobs, launch form, live job page, registry, evaluation."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from tests.tuning.factories import frozen_set
from tuning.models import Adapter, Evaluation, Job, JobEvent
from tuning.services.launch import job_launch

pytestmark = pytest.mark.django_db


def _client(user=None, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def job(tuning_project, admin_user):
    return job_launch(
        kind="dpo", project=tuning_project, created_by=admin_user, preference_set_id=frozen_set(tuning_project).pk
    )


@pytest.fixture
def adapter(tuning_project):
    folder = "adapters/test/v1"
    default_storage.save(f"{folder}/adapter_config.json", ContentFile(b'{"r": 16}'))
    default_storage.save(f"{folder}/adapter_model.safetensors", ContentFile(b"weights"))
    return Adapter.objects.create(base_model=tuning_project.base_model, project=tuning_project, name="v1-dpo", path=folder)


@pytest.fixture
def evaluation(tuning_project, adapter, admin_user):
    return Evaluation.objects.get(
        job=job_launch(kind="evaluate", project=tuning_project, created_by=admin_user, adapter_id=adapter.pk)
    )


PAGES = [
    ("get", "/jobs/"),
    ("get", "/jobs/new/dpo/"),
    ("post", "/jobs/new/dpo/"),
    ("get", "/jobs/{job}/"),
    ("get", "/jobs/{job}/live/"),
    ("post", "/jobs/{job}/cancel/"),
    ("get", "/adapters/"),
    ("get", "/adapters/{adapter}/"),
    ("get", "/adapters/{adapter}/download/"),
    ("post", "/adapters/{adapter}/promote/"),
    ("post", "/projects/{project}/rollback/"),
    ("get", "/evaluations/{evaluation}/"),
    ("get", "/evaluations/{evaluation}/live/"),
]


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_tuning_pages_are_for_admins_only(method, path, job, adapter, evaluation, reviewer, outsider, admin_user):
    url = path.format(job=job.pk, adapter=adapter.pk, project=job.project_id, evaluation=evaluation.pk)
    anonymous = getattr(_client(), method)(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert getattr(_client(reviewer), method)(url).status_code == 403
    assert getattr(_client(outsider), method)(url).status_code == 403
    if method == "get":
        assert _client(admin_user).get(url).status_code == 200
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and not job.cancel_requested


def test_the_launch_form_shows_defaults_and_help(tuning_project, admin_user):
    page = _client(admin_user).get(f"/jobs/new/dpo/?project={tuning_project.pk}").content.decode()
    assert 'name="beta"' in page and 'value="0.1"' in page
    assert "How strongly the adapter is held to where it started" in page
    assert "Evaluate afterwards" in page


def test_launching_from_the_form_queues_the_job_and_opens_its_page(tuning_project, admin_user):
    preference_set = frozen_set(tuning_project)
    response = _client(admin_user).post(
        f"/jobs/new/dpo/?project={tuning_project.pk}",
        {"project": tuning_project.pk, "preference_set": preference_set.pk, "adapter": "", "beta": "0.25",
         "loss_type": "sigmoid", "evaluate": "on"},
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.params["beta"] == 0.25 and job.params["evaluate"] is True and job.params["epochs"] is None
    page = _client(admin_user).get(response["Location"]).content.decode()
    assert "Cancel job" in page and 'hx-trigger="every 2s"' in page


def test_the_form_refuses_an_adapter_of_another_base_model_and_says_why(tuning_project, admin_user, other_tiny_source):
    from tests.tuning.factories import tiny_base_model

    foreign = Adapter.objects.create(base_model=tiny_base_model(other_tiny_source, name="other-base"), name="foreign", path="f")
    response = _client(admin_user).post(
        "/jobs/new/dpo/",
        {"project": tuning_project.pk, "preference_set": frozen_set(tuning_project).pk, "adapter": foreign.pk, "loss_type": "sigmoid"},
    )
    assert response.status_code == 400
    assert "belongs to base model other-base" in response.content.decode()
    assert not Job.objects.exists()


def test_the_live_fragment_draws_the_curves_and_stops_polling_when_done(job, admin_user):
    from django.utils import timezone

    JobEvent.objects.bulk_create(
        JobEvent(job=job, kind="metrics", created_at=timezone.now(),
                 data={"phase": "train", "step": s, "loss": 0.7 - s / 100, "rewards/margins": s / 10, "rewards/accuracies": 0.5 + s / 20})
        for s in range(1, 6)
    )
    Job.objects.filter(pk=job.pk).update(state="running", progress=0.5, eta_s=125, step=5, total_steps=10, phase="train")
    live = _client(admin_user).get(f"/jobs/{job.pk}/live/").content.decode()
    assert "2 min 5 s left" in live and "step 5 of 10" in live
    assert live.count("<polyline") == 3 and "Loss: 0.65 at step 5" in live
    Job.objects.filter(pk=job.pk).update(state="succeeded", progress=1.0)
    done = _client(admin_user).get(f"/jobs/{job.pk}/live/").content.decode()
    assert "hx-trigger" not in done and "Cancel job" not in done


def test_cancel_needs_the_csrf_token(job, admin_user):
    client = _client(admin_user, csrf=True)
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    page = client.get(f"/jobs/{job.pk}/")
    token = page.cookies["csrftoken"].value
    response = client.post(f"/jobs/{job.pk}/cancel/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED


def test_the_registry_shows_the_lineage_tree_and_downloads_a_zip(tuning_project, adapter, admin_user):
    Adapter.objects.create(base_model=adapter.base_model, project=tuning_project, name="v2-dpo", parent=adapter, path="p")
    page = _client(admin_user).get(f"/adapters/?project={tuning_project.pk}").content.decode()
    assert page.index("v1-dpo") < page.index("v2-dpo") and "--depth: 1" in page
    response = _client(admin_user).get(f"/adapters/{adapter.pk}/download/")
    assert response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert sorted(n.split("/", 1)[1] for n in names) == ["adapter_config.json", "adapter_model.safetensors"]


def test_promote_then_roll_back_from_the_registry(tuning_project, adapter, admin_user):
    client = _client(admin_user)
    client.post(f"/adapters/{adapter.pk}/promote/", {"project": tuning_project.pk})
    tuning_project.refresh_from_db()
    assert tuning_project.active_adapter == adapter
    client.post(f"/projects/{tuning_project.pk}/rollback/")
    tuning_project.refresh_from_db()
    assert tuning_project.active_adapter is None
    assert Adapter.objects.filter(pk=adapter.pk).exists()
