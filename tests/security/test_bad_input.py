"""Oversized and malformed input: refused with 413 or 400, saying where, and nothing stored."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from prefs.models import Comparison, Judgment, Project
from tests.factories import make_comparisons

pytestmark = pytest.mark.django_db


def _native(index: int) -> str:
    return json.dumps(
        {
            "prompt": [{"role": "user", "content": f"Question {index}?"}],
            "responses": [{"text": f"Answer {index} one"}, {"text": f"Answer {index} two"}],
            "preference": 0,
        }
    )


@pytest.fixture
def api_reviewer(reviewer, project):
    make_comparisons(project, 2)
    api = APIClient()
    api.force_authenticate(reviewer)
    return api


@pytest.fixture
def api_admin(admin_user):
    api = APIClient()
    api.force_authenticate(admin_user)
    return api


def _assignment(api, project) -> int:
    return api.get(f"/api/v1/projects/{project.pk}/next/").json()["assignment"]


def test_an_oversized_json_body_is_refused_with_413_and_nothing_stored(api_reviewer, project, settings):
    assignment = _assignment(api_reviewer, project)
    body = json.dumps({"choice": "left", "strength": 2, "rationale": "x", "padding": "y" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    answer = api_reviewer.generic("POST", f"/api/v1/assignments/{assignment}/judgment/", body, content_type="application/json")
    assert answer.status_code == 413
    assert "larger than this endpoint's limit of 2,621,440 bytes" in answer.json()["detail"]
    assert not Judgment.objects.exists()


def test_an_oversized_form_is_refused_with_413(client, reviewer, project, settings):
    from prefs.services.assignment import comparison_next_for

    client.force_login(reviewer)
    make_comparisons(project, 1)
    assignment = comparison_next_for(reviewer=reviewer, project=project)
    answer = client.post(
        f"/projects/{project.pk}/review/{assignment.pk}/judge/",
        {"choice": "left", "rationale": "z" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)},
    )
    assert answer.status_code == 413
    assert not Judgment.objects.exists()


def test_an_import_over_the_limit_is_refused_with_413_raw_multipart_and_gzipped(api_admin, admin_user, project, settings):
    settings.PREFLOOP_IMPORT_MAX_BYTES = 2_000
    lines = "\n".join(_native(i) for i in range(40)).encode()
    assert len(lines) > 2_000
    url = f"/api/v1/projects/{project.pk}/import/?format=native"

    raw = api_admin.generic("POST", url, lines, content_type="application/jsonl")
    assert raw.status_code == 413 and "import limit of 2,000 bytes" in raw.json()["detail"]
    # Far over the limit: refused from its Content-Length, before a byte is read.
    huge = api_admin.generic("POST", url, lines * 40, content_type="application/jsonl")
    assert huge.status_code == 413

    upload = io.BytesIO(lines)
    upload.name = "rows.jsonl"
    multipart = api_admin.post(url, {"file": upload}, format="multipart")
    assert multipart.status_code == 413

    # A small gzip that inflates past the limit counts at its inflated size.
    bomb = gzip.compress(lines)
    assert len(bomb) < 2_000
    zipped = api_admin.generic("POST", url, bomb, content_type="application/gzip")
    assert zipped.status_code == 413

    browser = Client()
    browser.force_login(admin_user)
    upload.seek(0)
    page = browser.post(f"/projects/{project.pk}/import/", {"file": upload, "format": "native"})
    assert page.status_code == 413
    assert not Comparison.objects.exists()


def test_malformed_json_is_refused_with_its_line_and_column(api_admin):
    answer = api_admin.generic("POST", "/api/v1/projects/", '{"name": "x",\n  "overlap": 2,,\n}', content_type="application/json")
    assert answer.status_code == 400
    body = answer.json()
    assert body["errors"] == [{"line": 2, "column": 16, "field": "", "message": "Expecting property name enclosed in double quotes"}]
    assert "line 2, column 16" in body["detail"]
    assert not Project.objects.exists()


def test_malformed_jsonl_is_refused_whole_with_every_bad_line(api_admin, project):
    rows = [_native(i) for i in range(6)]
    rows[2] = rows[2][:-5]  # cut short: not JSON
    rows[4] = "[1, 2]"  # JSON, but not an object
    body = ("\n".join(rows) + "\n").encode() + b"\xff\xfe not utf-8\n"
    answer = api_admin.generic("POST", f"/api/v1/projects/{project.pk}/import/?format=native", body, content_type="application/jsonl")
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert [e["line"] for e in errors] == [3, 5, 7]
    assert all(e["message"] for e in errors)
    assert not Comparison.objects.exists()


def test_an_unknown_choice_or_strength_names_the_field(api_reviewer, project):
    assignment = _assignment(api_reviewer, project)
    answer = api_reviewer.post(
        f"/api/v1/assignments/{assignment}/judgment/", {"choice": "<script>", "strength": 9}, format="json"
    )
    assert answer.status_code == 400
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"choice", "strength"}
    assert not Judgment.objects.exists()


# "²" passes str.isdigit() but int() refuses it; 2**70 does not fit a 64-bit key (SQLite
# raises OverflowError). Both used to be 500s.
ODD_IDS = ["²", "٣", str(2**70), "-1", "1e3"]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_ids_in_queries_and_forms_get_a_4xx_not_a_server_error(odd, api_admin, admin_user, reviewer, project):
    from prefs.services.assignment import comparison_next_for

    api_urls = [
        f"/api/v1/adapters/?project={odd}",
        f"/api/v1/adapters/?base_model={odd}",
        f"/api/v1/jobs/?project={odd}",
        f"/api/v1/projects/{project.pk}/preference-sets/?version={odd}",
        f"/api/v1/projects/{project.pk}/stats/?preference_set={odd}",
    ]
    for url in api_urls:
        assert 400 <= api_admin.get(url).status_code < 500, url
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    page_urls = [f"/jobs/?project={odd}", f"/adapters/?project={odd}", f"/projects/{project.pk}/stats/?preference_set={odd}"]
    for url in page_urls:
        assert 400 <= browser.get(url).status_code < 500, url
    gold = browser.post(f"/projects/{project.pk}/stats/gold/", {"comparison": odd, "gold_choice": "A"})
    assert gold.status_code == 302

    make_comparisons(project, 1)
    assignment = comparison_next_for(reviewer=reviewer, project=project)
    judge = Client(raise_request_exception=False)
    judge.force_login(reviewer)
    answer = judge.post(
        f"/projects/{project.pk}/review/{assignment.pk}/judge/",
        {"choice": "left", "strength": odd},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200 and b"strength" in answer.content.lower()
    assert not Judgment.objects.exists()


def _id_routes():
    from tests.security.test_permission_matrix import ROUTES

    for route in ROUTES:
        ids = [name for name in route.kwargs if name == "id" or name.endswith("_id")]
        if ids and route.name:
            yield pytest.param(route, ids, id=route.key)


@pytest.mark.parametrize(("route", "ids"), list(_id_routes()))
def test_an_id_past_64_bits_in_any_path_answers_404(route, ids, admin_user, reviewer, project):
    """2**63 - 1 is the largest key; one more used to be a 500 (OverflowError on SQLite)."""
    from django.urls import reverse

    kwargs = {name: 2**63 for name in ids}
    kwargs.update({name: "prefs" for name in route.kwargs if name == "app_label"})
    kwargs.update({name: "dpo" for name in route.kwargs if name == "kind"})
    try:
        url = reverse(route.name, kwargs=kwargs)
    except Exception:  # a converter that refuses the id is the fix itself: build the path by hand
        url = "/" + route.route.replace("^", "").replace("$", "")
        for name, value in kwargs.items():
            url = url.replace(f"<id:{name}>", str(value)).replace(f"<int:{name}>", str(value))
    for user in (admin_user, reviewer):
        for method in ("get", "post"):
            client = Client(raise_request_exception=False)
            client.force_login(user)
            answer = getattr(client, method)(url)
            if route.key.startswith("admin"):
                # Django's admin site sends a missing object to its index, with a message.
                assert answer.status_code < 500, f"{method.upper()} {url} as {user}: {answer.status_code}"
            else:
                assert answer.status_code == 404, f"{method.upper()} {url} as {user}: {answer.status_code}"


# Python refuses to turn more than 4,300 digits into an int (a guard against slow conversion);
# json.loads then raised a ValueError that no one caught.
_LONG_NUMBER_LINE = b'{"prompt": "Q?", "responses": ["a", "b"], "preference": ' + b"9" * 4301 + b"}\n"


def test_an_import_line_with_a_4301_digit_number_is_refused_naming_the_line(api_admin, project):
    body = (_native(0) + "\n").encode() + _LONG_NUMBER_LINE
    answer = api_admin.generic("POST", f"/api/v1/projects/{project.pk}/import/?format=native", body, content_type="application/jsonl")
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["line"] == 2 and "4300 digits" in error["message"]
    assert not Comparison.objects.exists()


def test_the_import_preview_refuses_a_4301_digit_number_and_keeps_no_upload(admin_user, project, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path / "media"
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    upload = SimpleUploadedFile("rows.jsonl", (_native(0) + "\n").encode() + _LONG_NUMBER_LINE)
    page = browser.post(f"/projects/{project.pk}/import/", {"file": upload, "format": "auto"})
    assert page.status_code == 400
    assert b"4300 digits" in page.content
    assert list((tmp_path / "media" / "imports").glob("*.upload")) == []
