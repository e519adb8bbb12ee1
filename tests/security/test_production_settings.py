"""Production settings: `check --deploy` is clean, and a weak setup refuses to start.

Each case runs in a subprocess, since settings are read once at start-up from the environment.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What an operator sets (docker-compose does the same): the flag, a key, the host name.
PRODUCTION_ENV = {
    "PREFLOOP_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "prefloop.example.com",
    "DEBUG": "False",
}


def _env(tmp_path: Path, **extra: str) -> dict:
    # The test runner's own settings (DATABASE_URL, DEBUG, SECURE_* …) must not leak in.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFLOOP_", "SECURE_", "SESSION_", "CSRF_", "DATABASE_", "REDIS_", "CELERY_", "TEST_DATABASE", "PYTEST"))
        # The browser tests' conftest sets DJANGO_ALLOW_ASYNC_UNSAFE for the test process only.
        and key not in ("DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "USE_X_FORWARDED_PROTO", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PREFLOOP_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )
    env.update(extra)
    return env


def _manage(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_the_production_flag_check_deploy_warns(tmp_path):
    # The demo defaults are for a laptop; the check must say so, which proves it is looking.
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W009", "security.W012", "security.W016"):
        assert code in result.stderr


@pytest.mark.parametrize(
    "change, message",
    [
        ({"SECRET_KEY": ""}, "needs SECRET_KEY"),
        ({"SECRET_KEY": "insecure-demo-key-change-me"}, "needs SECRET_KEY"),
        ({"SECRET_KEY": "too-short-a-secret"}, "at least 50 characters"),
        ({"SECRET_KEY": "ab" * 40}, "at least 50 characters"),
        ({"DEBUG": "True"}, "DEBUG must be False"),
        ({"PREFLOOP_ENV": "prod"}, "PREFLOOP_ENV must be development or production"),
    ],
)
def test_production_refuses_to_start_with_a_weak_setup(tmp_path, change, message):
    env = {**PRODUCTION_ENV, **change}
    if env["SECRET_KEY"] == "":
        del env["SECRET_KEY"]
    result = _manage(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_a_key_from_a_file_is_accepted(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text(secrets.token_urlsafe(50) + "\n")
    env = {**PRODUCTION_ENV, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret)}
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stderr


# Requests through Django's test client inside the production process: plain HTTP is
# redirected, HTTPS (as the proxy reports it) gets HSTS and secure cookies; probes are exempt.
_PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="prefloop.example.com")
plain = client.get("/login/")
secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
health = client.get("/healthz")
metrics = client.get("/metrics")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location", "")],
    "secure": [secure.status_code, secure.get("Strict-Transport-Security", "")],
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
    "frame": secure.get("X-Frame-Options", ""),
    "nosniff": secure.get("X-Content-Type-Options", ""),
    "health": health.status_code,
    "metrics": metrics.status_code,
}))
"""


def test_production_redirects_to_https_and_sends_hsts_and_secure_cookies(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=_env(tmp_path, **PRODUCTION_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://prefloop.example.com/login/"]
    assert seen["secure"][0] == 200
    assert seen["secure"][1] == "max-age=31536000; includeSubDomains; preload"
    assert seen["csrf_cookie_secure"] is True
    assert seen["frame"] == "DENY" and seen["nosniff"] == "nosniff"
    # Probes and scrapes are not redirected: they answer 200, or 503 when something is down
    # (here the database has no tables), never 301.
    assert seen["health"] in (200, 503)
    assert seen["metrics"] in (200, 503)
