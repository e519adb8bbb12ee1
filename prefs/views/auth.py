"""Log-in. Password guessing is slowed down for every login form alike (prefs/login_throttle.py)."""

from __future__ import annotations

from django.contrib.auth.views import LoginView


class SiteLoginView(LoginView):
    redirect_authenticated_user = True
