"""Token authentication on the API: the token's user, or 401 with DRF's messages."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _get(key: str, url: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(url)


def test_a_token_acts_as_its_user(reviewer, project, other_project):
    key = Token.objects.create(user=reviewer).key
    assert _get(key, f"/api/v1/projects/{project.pk}/next/").status_code == 204
    # The reviewer's own rights, no more: another project is as good as missing.
    assert _get(key, f"/api/v1/projects/{other_project.pk}/next/").status_code == 404


def test_an_unknown_token_is_refused(project):
    response = _get("0" * 40, f"/api/v1/projects/{project.pk}/next/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_a_deactivated_users_token_is_refused(reviewer, project):
    key = Token.objects.create(user=reviewer).key
    reviewer.is_active = False
    reviewer.save()
    response = _get(key, f"/api/v1/projects/{project.pk}/next/")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."


def test_a_client_revokes_its_own_token(django_user_model):
    user = django_user_model.objects.create_user("scripted", password="x" * 12)
    token = Token.objects.create(user=user)
    other = Token.objects.create(user=django_user_model.objects.create_user("other", password="y" * 12))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert api.delete("/api/v1/auth/token/").status_code == 204
    assert api.get("/api/v1/projects/").status_code == 401
    # Only the caller's own token; another user's keeps working.
    assert Token.objects.filter(key=other.key).exists()


def test_revoking_needs_a_signed_in_client(db):
    assert APIClient().delete("/api/v1/auth/token/").status_code == 401
