"""A brake on password guessing, for every login form at once.

Django's login forms answer as fast as anyone can ask. Each failed attempt is counted in the
cache per client address and per name, and, when the name belongs to an account, per account
too; after PREFLOOP_LOGIN_ATTEMPTS failures within PREFLOOP_LOGIN_WINDOW_S seconds, further
attempts are refused with 429 and a Retry-After header until the window ends, even with the
right password (otherwise the refusal itself would tell a guesser when they found it). A
successful log-in clears the counts.

The brake sits under the forms, not in one view, so that the site's /login/, Django admin's
/admin/login/ and any later form that calls django.contrib.auth.authenticate() share it:
- LoginThrottleBackend, first in AUTHENTICATION_BACKENDS, refuses a locked name or account
  before any other backend checks the password (PermissionDenied stops authenticate());
- Django's user_login_failed and user_logged_in signals count and clear (connected in
  PrefsConfig.ready());
- LoginThrottleMiddleware turns the refused attempt's page into 429 with Retry-After.

Names are counted as the login form reads them (NFKC, as UsernameField does) and case-folded,
so `ｂob`, `BOB` and `bob` share one count; the account count also covers spellings that some
backend maps to the same account without being the same string.

The keys hold the client address too, so a stranger cannot lock a colleague out from elsewhere;
behind a proxy that is the proxy's address unless the proxy rewrites REMOTE_ADDR. Calls without
a request (scripts, the test client's login()) are not counted: nobody can guess through them.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

# Set on a refused request: the seconds until its window ends (read by the middleware).
REFUSED_ATTR = "prefloop_login_refused_s"


def normalise_username(username: str) -> str:
    """The name as the login form reads it (NFKC), trimmed and case-folded."""
    return unicodedata.normalize("NFKC", username or "").strip().casefold()


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _cache_key(kind: str, value: str, address: str) -> str:
    # Hashed so any name makes a valid cache key (memcached refuses spaces and long keys).
    digest = hashlib.sha256(f"{kind}\0{value}\0{address}".encode()).hexdigest()[:32]
    return f"prefloop:login-failures:{digest}"


def _account_pk(username: str):
    """The account the login form would check this name against, or None."""
    User = get_user_model()
    name = unicodedata.normalize("NFKC", username or "")
    try:
        return User._default_manager.get_by_natural_key(name).pk
    except User.DoesNotExist:
        return None


def _keys(request, username: str, account_pk=None) -> list[str]:
    address = _address(request)
    keys = [_cache_key("name", normalise_username(username), address)]
    if account_pk is None:
        account_pk = _account_pk(username)
    if account_pk is not None:
        keys.append(_cache_key("account", str(account_pk), address))
    return keys


def _limit() -> int:
    return settings.PREFLOOP_LOGIN_ATTEMPTS


def _window_s() -> int:
    return settings.PREFLOOP_LOGIN_WINDOW_S


def _seconds_left(key: str) -> int:
    started = cache.get(f"{key}:start")
    if started is None:
        return _window_s()
    return max(1, math.ceil(started + _window_s() - time.time()))


def login_seconds_locked(*, request, username: str) -> int:
    """Seconds until this name (and its account) may try again from here; 0 when it may now."""
    keys = _keys(request, username)
    counts = cache.get_many(keys)
    locked = [key for key in keys if counts.get(key, 0) >= _limit()]
    return max((_seconds_left(key) for key in locked), default=0)


def login_failure_record(*, request, username: str) -> None:
    for key in _keys(request, username):
        # add() only writes when the key is missing, so the window runs from the first failure.
        cache.add(f"{key}:start", time.time(), timeout=_window_s())
        cache.add(key, 0, timeout=_window_s())
        try:
            cache.incr(key)
        except ValueError:
            # The count expired between add() and incr(): this failure starts a new window.
            cache.set(key, 1, timeout=_window_s())


def login_failures_clear(*, request, user) -> None:
    keys = _keys(request, user.get_username(), account_pk=user.pk)
    cache.delete_many([*keys, *(f"{key}:start" for key in keys)])


class LoginThrottleBackend:
    """Authenticates nobody; refuses a locked name before the real backends see the password."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or username is None:
            return None
        seconds = login_seconds_locked(request=request, username=username)
        if seconds:
            setattr(request, REFUSED_ATTR, seconds)
            if hasattr(request, "_messages"):
                minutes = max(1, math.ceil(seconds / 60))
                messages.error(
                    request,
                    f"Too many failed log-ins for this username from your address. "
                    f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                )
            raise PermissionDenied("too many failed log-ins")
        return None

    # No get_user(): sessions and the test client's force_login() pick the first backend that
    # has one, which must stay ModelBackend (existing sessions name it).


def on_login_failed(sender, credentials, request=None, **kwargs):
    # A refused attempt is not another guess: it never reached a password check.
    if request is None or getattr(request, REFUSED_ATTR, None):
        return
    # The login forms pass the name as `username` whatever the user model calls it.
    username = credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD) or ""
    login_failure_record(request=request, username=username)


def on_logged_in(sender, request, user, **kwargs):
    if request is not None:
        login_failures_clear(request=request, user=user)


class LoginThrottleMiddleware:
    """A login page that was refused by the throttle answers 429 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        seconds = getattr(request, REFUSED_ATTR, None)
        if seconds:
            response.status_code = 429
            response["Retry-After"] = str(seconds)
        return response
