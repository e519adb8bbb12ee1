"""The rounds page, API and command: thin doors onto the rounds service."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tuning.models import Job, Round

pytestmark = pytest.mark.django_db


def test_the_rounds_page_starts_a_round_and_shows_it_on_the_timeline(client, tuning_project, admin_user):
    client.force_login(admin_user)
    page = client.get(f"/projects/{tuning_project.pk}/rounds/")
    assert page.status_code == 200 and b"Start the next round" in page.content and b"No rounds yet" in page.content

    answer = client.post(f"/projects/{tuning_project.pk}/rounds/start/", follow=True)
    assert b"Round 1 started" in answer.content
    assert b"sampling" in answer.content
    round_ = Round.objects.get(project=tuning_project)
    assert round_.generate_job.state == Job.State.QUEUED
    # While round 1 has not trained, the page offers training it, not another round.
    assert b"Start the next round</button>" not in answer.content
    assert b"Round 1 is still collecting" in answer.content


def test_the_round_settings_form_refuses_k_outside_two_to_four(client, tuning_project, admin_user):
    client.force_login(admin_user)
    url = f"/projects/{tuning_project.pk}/rounds/settings/"
    answer = client.post(url, {"samples": "6", "pairing": "all", "target_judgments": "10", "max_prompts": "5"}, follow=True)
    assert b"answers per prompt must be 2, 3 or 4" in answer.content
    client.post(url, {"samples": "3", "pairing": "all", "target_judgments": "10", "max_prompts": "5"})
    assert tuning_project.round_policy.samples == 3


def test_the_api_starts_lists_and_refuses_a_second_open_round(tuning_project, admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    first = api.post(f"/api/v1/projects/{tuning_project.pk}/rounds/")
    assert first.status_code == 201, first.content
    assert first.json()["number"] == 1 and first.json()["state"] == "sampling"
    second = api.post(f"/api/v1/projects/{tuning_project.pk}/rounds/")
    assert second.status_code == 409 and "has not trained yet" in second.json()["detail"]
    listed = api.get(f"/api/v1/projects/{tuning_project.pk}/rounds/").json()
    assert [r["number"] for r in listed] == [1]
    policy = api.put(
        f"/api/v1/projects/{tuning_project.pk}/rounds/policy/",
        {"samples": 5, "pairing": "all", "target_judgments": 1, "max_prompts": 1},
        format="json",
    )
    assert policy.status_code == 400 and policy.json()["errors"][0]["field"] == "samples"


def test_the_command_starts_a_round_and_prints_the_timeline(tuning_project):
    out = StringIO()
    call_command("round", str(tuning_project.pk), "start", stdout=out)
    assert "round 1 started" in out.getvalue()
    assert "round 1: sampling" in out.getvalue()
    with pytest.raises(CommandError, match="has not trained yet"):
        call_command("round", str(tuning_project.pk), "start", stdout=StringIO())
