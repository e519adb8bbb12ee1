"""The launch form: what a person gets by pressing "Queue the job" without changing anything."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from tuning.models import Adapter, Job

pytestmark = pytest.mark.django_db


class _FormDefaults(HTMLParser):
    """What a browser would post for the launch form as rendered, untouched."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            if attrs.get("type") == "checkbox":
                if "checked" in attrs:
                    self.data[name] = attrs.get("value") or "on"
            else:
                self.data[name] = attrs.get("value") or ""
        elif tag == "select":
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = attrs.get("value", "")
            if "selected" in attrs:
                self.data[self._select] = attrs.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.data[name] = ""

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.data.setdefault(self._select, self._first_option or "")
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data.removeprefix("\n")


def _submit_defaults(client: Client, url: str):
    page = client.get(url)
    assert page.status_code == 200
    parser = _FormDefaults()
    parser.feed(page.content.decode())
    return page, client.post(url, parser.data)


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _adapter(project, name: str, kind: str = Adapter.Kind.POLICY) -> Adapter:
    return Adapter.objects.create(base_model=project.base_model, project=project, name=name, kind=kind, path="x")


def test_rejection_sampling_with_the_forms_defaults_queues_a_job_after_a_first_round(admin_client, tuning_project):
    # A demo-like project after its first DPO round: train and held-out prompts, one DPO adapter,
    # not promoted yet (answers come from the base; v1's implicit reward scores them).
    v1 = _adapter(tuning_project, "v1")
    page, response = _submit_defaults(admin_client, f"/jobs/new/rejection_sampling/?project={tuning_project.pk}")
    assert response.status_code == 302, response.content.decode()[:3000]
    job = Job.objects.get(kind=Job.Kind.REJECTION_SAMPLING)
    assert job.state == Job.State.QUEUED and job.input_adapter is None
    assert (job.params["reward"], job.params["reward_adapter"]) == ("implicit", v1.pk)
    # The reward adapter is picked from a list of the project's adapters, not typed as an id.
    assert '<select name="reward_adapter"' in page.content.decode() and "v1 (#" in page.content.decode()


def test_once_an_adapter_is_active_the_defaults_sample_from_it_and_score_with_its_own_reward(admin_client, tuning_project):
    v1 = _adapter(tuning_project, "v1")
    tuning_project.active_adapter = v1
    tuning_project.save(update_fields=["active_adapter"])
    _, response = _submit_defaults(admin_client, f"/jobs/new/rejection_sampling/?project={tuning_project.pk}")
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.REJECTION_SAMPLING)
    assert job.input_adapter == v1 and job.params["reward_adapter"] is None and job.params["reward"] == "implicit"


def test_picking_a_reward_model_scores_with_it(admin_client, tuning_project):
    _adapter(tuning_project, "v1")
    scorer = _adapter(tuning_project, "rm1", kind=Adapter.Kind.REWARD)
    url = f"/jobs/new/rejection_sampling/?project={tuning_project.pk}"
    page = admin_client.get(url)
    parser = _FormDefaults()
    parser.feed(page.content.decode())
    response = admin_client.post(url, {**parser.data, "reward_adapter": str(scorer.pk)})
    assert response.status_code == 302
    job = Job.objects.get(kind=Job.Kind.REJECTION_SAMPLING)
    assert (job.params["reward"], job.params["reward_adapter"]) == ("model", scorer.pk)


def test_a_project_without_adapters_is_told_what_to_train_first(admin_client, tuning_project):
    page, response = _submit_defaults(admin_client, f"/jobs/new/rejection_sampling/?project={tuning_project.pk}")
    assert "no adapter to score answers with yet" in page.content.decode()
    assert response.status_code == 400
    assert "trains one with a DPO job first" in response.content.decode()
    assert not Job.objects.exists()


def test_a_default_run_is_small_enough_for_minutes_on_a_cpu():
    from tuning.services.params import param_defaults

    defaults = param_defaults("rejection_sampling")
    # Answers sampled by default: a few batches of the engine's 16, not hundreds.
    assert defaults["n"] * defaults["max_prompts"] <= 32
