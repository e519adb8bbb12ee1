"""Guessing is slowed down: the login page and the API answer 429 with Retry-After."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


def _attempt(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_login_refuses_a_guesser_after_five_failures_even_with_the_right_password(client, reviewer):
    for _ in range(5):
        answer = _attempt(client, "rita", "wrong-guess")
        assert answer.status_code == 200
        assert b"Please enter a correct username and password" in answer.content

    refused = _attempt(client, "rita", "rita-password")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 15 * 60
    assert b"Too many failed log-ins for this username from your address" in refused.content
    assert "_auth_user_id" not in client.session


def test_the_login_throttle_is_per_username_and_address(client, reviewer, admin_user):
    for _ in range(5):
        _attempt(client, "RITA", "wrong-guess")

    # Usernames count case-insensitively, so changing case does not buy more guesses.
    assert _attempt(client, "rita", "wrong-again").status_code == 429
    # Another account from the same address, and the same account from elsewhere, still log in.
    assert _attempt(client, "ada", "ada-password").status_code == 302
    client.logout()
    assert _attempt(client, "rita", "rita-password", address="198.51.100.9").status_code == 302


def test_a_successful_login_clears_the_failure_count(client, reviewer):
    for _ in range(4):
        _attempt(client, "rita", "wrong-guess")
    assert _attempt(client, "rita", "rita-password").status_code == 302
    client.logout()
    for _ in range(4):
        assert _attempt(client, "rita", "wrong-guess").status_code == 200
    assert _attempt(client, "rita", "rita-password").status_code == 302


def test_the_window_is_configurable(client, reviewer, settings):
    settings.PREFLOOP_LOGIN_ATTEMPTS = 2
    settings.PREFLOOP_LOGIN_WINDOW_S = 60
    _attempt(client, "rita", "x")
    _attempt(client, "rita", "y")
    refused = _attempt(client, "rita", "rita-password")
    assert refused.status_code == 429 and int(refused["Retry-After"]) <= 60


def test_the_admin_login_refuses_a_guesser_like_the_site_login(client, admin_user):
    for _ in range(5):
        answer = client.post(
            "/admin/login/", {"username": "ada", "password": "wrong-guess"}, REMOTE_ADDR="203.0.113.7"
        )
        assert answer.status_code == 200

    refused = client.post(
        "/admin/login/", {"username": "ada", "password": "ada-password"}, REMOTE_ADDR="203.0.113.7"
    )
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 15 * 60
    assert b"Too many failed log-ins for this username from your address" in refused.content
    assert "_auth_user_id" not in client.session


def test_failures_on_one_login_form_count_on_the_other(client, admin_user):
    for _ in range(3):
        _attempt(client, "ada", "wrong-guess")
    for _ in range(2):
        client.post("/admin/login/", {"username": "ada", "password": "wrong"}, REMOTE_ADDR="203.0.113.7")
    assert _attempt(client, "ada", "ada-password").status_code == 429
    refused = client.post(
        "/admin/login/", {"username": "ada", "password": "ada-password"}, REMOTE_ADDR="203.0.113.7"
    )
    assert refused.status_code == 429


def test_a_locked_name_cannot_log_in_through_a_full_width_spelling(client, reviewer):
    for _ in range(5):
        _attempt(client, "rita", "wrong-guess")
    # U+FF52 FULLWIDTH LATIN SMALL LETTER R: the login form reads it (NFKC) as "r".
    refused = _attempt(client, "\uff52ita", "rita-password")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


LOOK_ALIKES = (
    "rita", "\uff52ita", "r\uff49ta", "ri\uff54a", "rit\uff41", "\uff32\uff29\uff34\uff21", "\uff52\uff49\uff54\uff41",
)


def test_wrong_passwords_spread_over_look_alike_spellings_share_one_count(client, reviewer):
    answers = [_attempt(client, LOOK_ALIKES[i % len(LOOK_ALIKES)], f"guess-{i}").status_code for i in range(35)]
    assert answers[:5] == [200] * 5
    assert set(answers[5:]) == {429}
    assert _attempt(client, "rita", "rita-password").status_code == 429


@pytest.fixture
def small_api_rates(monkeypatch):
    # DRF copies DEFAULT_THROTTLE_RATES onto the class when it is imported, so a test lowers the
    # rates there; the throttle classes themselves are the ones settings configure.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/min", "user": "5/min"})


def test_the_api_throttles_a_signed_in_client_with_retry_after(reviewer, project, small_api_rates):
    api = APIClient()
    api.force_authenticate(reviewer)
    answers = [api.get(f"/api/v1/projects/{project.pk}/next/").status_code for _ in range(6)]
    assert answers[:5] == [204] * 5
    assert answers[5] == 429
    refused = api.get(f"/api/v1/projects/{project.pk}/next/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "throttled" in refused.json()["detail"].lower()


def test_the_api_throttles_anonymous_clients(db, small_api_rates):
    api = APIClient()
    answers = [api.get("/api/schema/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
