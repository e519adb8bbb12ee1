"""Log-in with a brake on password guessing.

Django's LoginView answers as fast as anyone can ask. Here each failed attempt is counted per
username and client address in the cache; after PREFLOOP_LOGIN_ATTEMPTS failures within
PREFLOOP_LOGIN_WINDOW_S seconds, further attempts for that pair are refused with 429 and a
Retry-After header until the window ends, even with the right password (otherwise the refusal
itself would tell a guesser when they found it). A successful log-in clears the count.

The key holds the client address too, so a stranger cannot lock a colleague out from elsewhere;
behind a proxy that is the proxy's address unless the proxy rewrites REMOTE_ADDR.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.cache import cache


def _key(request) -> str:
    username = (request.POST.get("username") or "").strip().lower()
    address = request.META.get("REMOTE_ADDR", "")
    # Hashed so any username makes a valid cache key (memcached refuses spaces and long keys).
    digest = hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()[:32]
    return f"prefloop:login-failures:{digest}"


def _limit() -> int:
    return settings.PREFLOOP_LOGIN_ATTEMPTS


def _window_s() -> int:
    return settings.PREFLOOP_LOGIN_WINDOW_S


def _seconds_left(key: str) -> int:
    started = cache.get(f"{key}:start")
    if started is None:
        return _window_s()
    return max(1, math.ceil(started + _window_s() - time.time()))


class ThrottledLoginView(LoginView):
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        key = _key(request)
        if cache.get(key, 0) >= _limit():
            return self._refused(key)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = _key(self.request)
        # add() only writes when the key is missing, so the window runs from the first failure.
        cache.add(f"{key}:start", time.time(), timeout=_window_s())
        cache.add(key, 0, timeout=_window_s())
        try:
            cache.incr(key)
        except ValueError:
            # The count expired between add() and incr(): this failure starts a new window.
            cache.set(key, 1, timeout=_window_s())
        return super().form_invalid(form)

    def form_valid(self, form):
        key = _key(self.request)
        cache.delete_many([key, f"{key}:start"])
        return super().form_valid(form)

    def _refused(self, key: str):
        seconds = _seconds_left(key)
        minutes = max(1, math.ceil(seconds / 60))
        messages.error(
            self.request,
            f"Too many failed log-ins for this username from your address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        )
        response = self.render_to_response(self.get_context_data(form=self.get_form_class()(self.request)), status=429)
        response["Retry-After"] = str(seconds)
        return response
