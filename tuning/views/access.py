"""Every tuning page is for admins: anonymous visitors go to the login page, others get 403."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from prefs.access import is_admin


def admin_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may see tuning pages.")
        return view(request, *args, **kwargs)

    return wrapper
