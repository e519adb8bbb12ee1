"""Admin data pages: upload with a preview before importing, freezing, a version's page."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from prefs.models import Comparison, PreferenceSet
from prefs.services.imports import import_run
from prefs.services.snapshots import preference_set_freeze

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _rows(n: int, start: int = 0) -> bytes:
    return "".join(
        json.dumps({"prompt": f"Question {i}?", "responses": [f"Yes {i}", f"No {i}"], "preference": 0}) + "\n"
        for i in range(start, start + n)
    ).encode()


def _upload(client, project, data: bytes, **extra):
    return client.post(
        f"/projects/{project.pk}/import/",
        {"file": SimpleUploadedFile("rows.jsonl", data), "format": "auto", **extra},
    )


def test_an_upload_is_previewed_and_only_written_on_confirmation(client, admin_user, project, media):
    client.force_login(admin_user)
    preview = _upload(client, project, _rows(7))
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Import 7 rows" in page and "Question 0?" in page and "Question 4?" in page
    assert "Question 5?" not in page  # only the first five rows are previewed
    assert not Comparison.objects.exists()

    token = preview.context["token"]
    done = client.post(f"/projects/{project.pk}/import/confirm/", {"token": token, "format": "native"})
    assert done.status_code == 302 and done["Location"] == f"/projects/{project.pk}/sets/"
    assert Comparison.objects.count() == 7
    assert not list((media / "imports").iterdir())
    # The same confirmation twice imports nothing more.
    again = client.post(f"/projects/{project.pk}/import/confirm/", {"token": token, "format": "native"}, follow=True)
    assert "upload is gone" in again.content.decode()
    assert Comparison.objects.count() == 7


def test_a_bad_file_shows_its_lines_and_offers_no_confirmation(client, admin_user, project, media):
    client.force_login(admin_user)
    response = _upload(client, project, _rows(3) + b'{"prompt": "q", "responses": ["a"]}\n')
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing can be imported" in page and "<td>4</td>" in page and "responses" in page
    assert "Import 3 rows" not in page
    assert not list((media / "imports").iterdir())
    assert not Comparison.objects.exists()


def test_a_forged_token_finds_nothing(client, admin_user, project):
    client.force_login(admin_user)
    response = client.post(f"/projects/{project.pk}/import/confirm/", {"token": "../../etc/passwd", "format": "auto"})
    assert response.status_code == 404


def test_a_file_over_the_limit_is_refused(client, admin_user, project, settings):
    settings.PREFLOOP_IMPORT_MAX_BYTES = 100
    client.force_login(admin_user)
    response = _upload(client, project, _rows(10))
    assert response.status_code == 413
    assert "import limit" in response.content.decode()


def test_freezing_from_the_page_shows_the_new_version(client, admin_user, project):
    import_run(project=project, stream=io.BytesIO(_rows(4)))
    client.force_login(admin_user)
    response = client.post(
        f"/projects/{project.pk}/sets/",
        {"rule": "majority", "min_judgments": "1", "min_agreement": "0", "split": "train",
         "include_imported": "on", "strength_as_weight": "on"},
        follow=True,
    )
    frozen = PreferenceSet.objects.get()
    assert response.redirect_chain[-1][0] == f"/sets/{frozen.pk}/"
    page = response.content.decode()
    assert "preference set v1" in page and frozen.sha256 in page and "Question 0?" in page
    assert f"/api/v1/preference-sets/{frozen.pk}/export/?format=parquet" in page
    listing = client.get(f"/projects/{project.pk}/sets/").content.decode()
    assert f'href="/sets/{frozen.pk}/"' in listing


def test_a_bad_rule_is_shown_back(client, admin_user, project):
    client.force_login(admin_user)
    response = client.post(f"/projects/{project.pk}/sets/", {"min_judgments": "0", "min_agreement": "2"})
    assert response.status_code == 400
    assert "min_judgments: must be at least 1" in response.content.decode()
    assert not PreferenceSet.objects.exists()


def test_a_version_page_shows_what_changed(client, admin_user, project):
    import_run(project=project, stream=io.BytesIO(_rows(2)))
    preference_set_freeze(project=project)
    import_run(project=project, stream=io.BytesIO(_rows(1, start=10)))
    second = preference_set_freeze(project=project)
    client.force_login(admin_user)
    page = client.get(f"/sets/{second.pk}/").content.decode()
    assert "1 added · 0 removed · 0 flipped" in page
    assert "Question 10?" in page


@pytest.mark.parametrize("who", ["reviewer", "outsider"])
def test_reviewers_find_no_data_pages(who, client, reviewer, outsider, project):
    import_run(project=project, stream=io.BytesIO(_rows(1)))
    frozen = preference_set_freeze(project=project)
    client.force_login({"reviewer": reviewer, "outsider": outsider}[who])
    for url in (f"/projects/{project.pk}/import/", f"/projects/{project.pk}/sets/", f"/sets/{frozen.pk}/"):
        assert client.get(url).status_code == 404
    assert _upload(client, project, _rows(1)).status_code == 404
    assert client.post(f"/projects/{project.pk}/sets/", {}).status_code == 404
    assert PreferenceSet.objects.count() == 1


def test_anonymous_visitors_are_sent_to_sign_in(client, project):
    for url in (f"/projects/{project.pk}/import/", f"/projects/{project.pk}/sets/", "/sets/1/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_project_card_links_the_data_pages(client, admin_user, project):
    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert f'href="/projects/{project.pk}/import/"' in page
    assert f'href="/projects/{project.pk}/sets/"' in page
