"""Fixtures of the security tests."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """A cache of the test's own: throttle counters (login, API) start at zero and never leak
    into other tests, nor into the Redis that CI shares with the broker."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"security-{uuid.uuid4().hex}",
        }
    }
