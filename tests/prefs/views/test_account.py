from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _api_works(key: str) -> bool:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get("/api/v1/projects/").status_code == 200


def test_the_account_page_needs_a_login(client):
    response = client.get("/account/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_user_revokes_their_own_token_from_their_page(client, reviewer, project):
    token = Token.objects.create(user=reviewer)
    client.force_login(reviewer)
    page = client.get("/account/").content.decode()
    assert "Revoke my API token" in page and token.key not in page

    response = client.post("/account/token/revoke/", follow=True)
    assert "Your API token was revoked" in response.content.decode()
    assert not Token.objects.filter(user=reviewer).exists()
    assert not _api_works(token.key)


def test_changing_the_password_revokes_the_tokens(client, reviewer, project):
    token = Token.objects.create(user=reviewer)
    client.force_login(reviewer)
    response = client.post(
        "/account/",
        {"old_password": "rita-password", "new_password1": "a-brand-new-secret", "new_password2": "a-brand-new-secret"},
        follow=True,
    )
    assert "Password changed. Your API tokens were revoked." in response.content.decode()
    reviewer.refresh_from_db()
    assert reviewer.check_password("a-brand-new-secret")
    assert not _api_works(token.key)
    # This browser stays signed in.
    assert client.get("/account/").status_code == 200


def test_a_user_may_keep_their_tokens_when_changing_the_password(client, reviewer, project):
    token = Token.objects.create(user=reviewer)
    client.force_login(reviewer)
    client.post(
        "/account/",
        {"old_password": "rita-password", "new_password1": "a-brand-new-secret",
         "new_password2": "a-brand-new-secret", "keep_tokens": "on"},
    )
    reviewer.refresh_from_db()
    assert reviewer.check_password("a-brand-new-secret")
    assert _api_works(token.key)


def test_a_wrong_old_password_or_a_weak_new_one_changes_nothing(client, reviewer):
    token = Token.objects.create(user=reviewer)
    client.force_login(reviewer)
    for data in (
        {"old_password": "not-it", "new_password1": "a-brand-new-secret", "new_password2": "a-brand-new-secret"},
        {"old_password": "rita-password", "new_password1": "123", "new_password2": "123"},
    ):
        assert client.post("/account/", data).status_code == 200
    reviewer.refresh_from_db()
    assert reviewer.check_password("rita-password")
    assert Token.objects.filter(key=token.key).exists()


def test_a_password_changed_in_djangos_admin_revokes_the_users_tokens(client, admin_user, reviewer, project):
    token = Token.objects.create(user=reviewer)
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{reviewer.pk}/password/",
        {"password1": "set-by-the-admin-1", "password2": "set-by-the-admin-1", "usable_password": "true"},
    )
    assert response.status_code == 302
    reviewer.refresh_from_db()
    assert reviewer.check_password("set-by-the-admin-1")
    assert not _api_works(token.key)
