"""Projects API: admins list and create; reviewers see only their own; outsiders get 404."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prefs.models import Project

pytestmark = pytest.mark.django_db


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        key, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key.key}")
    return client


def _names(response) -> list[str]:
    return [p["name"] for p in response.json()["results"]]


def test_an_admin_lists_every_project_newest_first(admin_user, project, other_project):
    response = _client(admin_user).get("/api/v1/projects/")
    assert response.status_code == 200
    assert _names(response) == ["Elsewhere", "Helpfulness"]


def test_a_reviewer_lists_only_their_own_projects(reviewer, outsider, project, other_project):
    assert _names(_client(reviewer).get("/api/v1/projects/")) == ["Helpfulness"]
    assert _names(_client(outsider).get("/api/v1/projects/")) == ["Elsewhere"]


def test_the_list_filters_by_name_and_pages_by_cursor(admin_user):
    for i in range(5):
        Project.objects.create(name=f"Batch {i}")
    Project.objects.create(name="Other")
    client = _client(admin_user)
    first = client.get("/api/v1/projects/?name=batch&page_size=2").json()
    assert [p["name"] for p in first["results"]] == ["Batch 4", "Batch 3"]
    second = client.get(first["next"]).json()
    assert [p["name"] for p in second["results"]] == ["Batch 2", "Batch 1"]


def test_an_admin_creates_a_project(admin_user):
    response = _client(admin_user).post(
        "/api/v1/projects/", {"name": "Tone", "guidelines": "Be *kind*.", "overlap": 3}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["overlap"], body["hold_timeout_s"]) == ("Tone", 3, 900)
    assert Project.objects.get(pk=body["id"]).guidelines == "Be *kind*."


def test_a_bad_project_is_refused_field_by_field(admin_user):
    response = _client(admin_user).post("/api/v1/projects/", {"name": " ", "overlap": 0}, format="json")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"name", "overlap"}


def test_only_admins_create_projects(reviewer):
    assert _client(reviewer).post("/api/v1/projects/", {"name": "Mine"}, format="json").status_code == 403
    assert _client().post("/api/v1/projects/", {"name": "Mine"}, format="json").status_code == 401
    assert not Project.objects.filter(name="Mine").exists()


def test_anonymous_callers_are_asked_to_sign_in():
    assert _client().get("/api/v1/projects/").status_code == 401


def test_a_project_reads_for_its_reviewers_and_admins_but_not_outsiders(admin_user, reviewer, outsider, project):
    url = f"/api/v1/projects/{project.pk}/"
    assert _client(admin_user).get(url).json()["name"] == "Helpfulness"
    assert _client(reviewer).get(url).status_code == 200
    assert _client(outsider).get(url).status_code == 404
    assert _client().get(url).status_code == 401
