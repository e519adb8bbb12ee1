"""Browser-side protections: the security headers on every page, and CSRF on every write."""

from __future__ import annotations

import pytest
from django.test import Client

from prefs.models import Judgment
from prefs.services.assignment import comparison_next_for
from tests.factories import make_comparisons

pytestmark = pytest.mark.django_db


def test_pages_forbid_inline_scripts_framing_and_sniffing(client, reviewer, project):
    client.force_login(reviewer)
    for url in ("/login/", "/", f"/projects/{project.pk}/review/", "/api/v1/projects/"):
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_the_api_docs_run_under_the_same_policy(client):
    policy = client.get("/api/docs/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_a_session_write_without_the_csrf_token_is_refused(reviewer, project):
    make_comparisons(project, 1)
    assignment = comparison_next_for(reviewer=reviewer, project=project)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)

    page = browser.post(f"/projects/{project.pk}/review/{assignment.pk}/judge/", {"choice": "left"})
    assert page.status_code == 403
    api = browser.post(
        f"/api/v1/assignments/{assignment.pk}/judgment/", {"choice": "left"}, content_type="application/json"
    )
    assert api.status_code == 403 and "CSRF" in api.json()["detail"]
    assert not Judgment.objects.exists()

    # The page carries the token (htmx sends it as X-CSRFToken); with it the same write works.
    token = browser.get(f"/projects/{project.pk}/review/").cookies["csrftoken"].value
    answer = browser.post(
        f"/api/v1/assignments/{assignment.pk}/judgment/", {"choice": "left"},
        content_type="application/json", HTTP_X_CSRFTOKEN=token,
    )
    assert answer.status_code == 201


def test_logging_out_needs_a_post_with_the_token(reviewer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer)
    assert browser.get("/logout/").status_code == 405
    assert browser.post("/logout/").status_code == 403
    assert "_auth_user_id" in browser.session
