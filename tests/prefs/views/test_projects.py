from __future__ import annotations

import pytest

from prefs.models import Project

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_project_with_reviewers(client, admin_user, reviewer):
    client.force_login(admin_user)
    assert "New project" in client.get("/projects/new/").content.decode()
    response = client.post(
        "/projects/new/",
        {"name": "  Tone  ", "guidelines": "Be kind.", "overlap": "3", "hold_timeout_s": "600",
         "gold_rate": "0.1", "reviewers": [reviewer.pk]},
    )
    assert response.status_code == 302
    project = Project.objects.get(name="Tone")
    assert (project.overlap, project.hold_timeout_s, project.gold_rate) == (3, 600, 0.1)
    assert list(project.reviewers.all()) == [reviewer]


def test_bad_settings_are_refused_with_reasons(client, admin_user, project):
    client.force_login(admin_user)
    response = client.post(
        f"/projects/{project.pk}/settings/",
        {"name": " ", "overlap": "0", "hold_timeout_s": "5", "gold_rate": "2"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    for reason in ("This field is required", "Between 1 and 20", "Between 30 seconds", "between 0 and 1"):
        assert reason in html
    project.refresh_from_db()
    assert project.name == "Helpfulness"


def test_settings_change_reviewers_and_overlap(client, admin_user, project, reviewer, outsider):
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/settings/").content.decode()
    assert f'value="{reviewer.pk}"' in page and "checked" in page
    client.post(
        f"/projects/{project.pk}/settings/",
        {"name": "Helpfulness", "guidelines": "", "overlap": "2", "hold_timeout_s": "900",
         "gold_rate": "0", "reviewers": [outsider.pk]},
    )
    project.refresh_from_db()
    assert project.overlap == 2
    assert list(project.reviewers.all()) == [outsider]


def test_reviewers_cannot_create_or_change_projects(client, reviewer, project):
    client.force_login(reviewer)
    assert client.get("/projects/new/").status_code == 403
    assert client.post(f"/projects/{project.pk}/settings/", {"name": "Mine"}).status_code == 403
    project.refresh_from_db()
    assert project.name == "Helpfulness"


def test_an_admin_chooses_to_show_links_as_text(client, admin_user, project):
    client.force_login(admin_user)
    assert "Show links as text" in client.get(f"/projects/{project.pk}/settings/").content.decode()
    response = client.post(
        f"/projects/{project.pk}/settings/",
        {"name": project.name, "guidelines": "", "overlap": "1", "hold_timeout_s": "900", "gold_rate": "0",
         "links_as_text": "on"},
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.links_as_text is True
