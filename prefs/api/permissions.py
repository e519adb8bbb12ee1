"""DRF permission classes shared by the prefs and tuning APIs."""

from __future__ import annotations

from rest_framework.permissions import BasePermission


class IsAdmin(BasePermission):
    """Staff only. Anonymous callers get 401, signed-in non-admins 403."""

    message = "Only admins may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
