"""People: reviewers and admins, their projects, and API tokens."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

from prefs.models import Project

ROLES = ("reviewer", "admin")


class UserError(ValueError):
    pass


def user_create_or_update(
    *,
    username: str,
    role: str,
    password: str | None = None,
    project_ids: Iterable[int] = (),
) -> tuple[object, bool, str | None]:
    """Creates the user or updates role, password and projects.

    Returns (user, created, generated_password); a new user given no password gets a random
    one, returned so the caller can show it once.
    """
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not username or not username.strip():
        raise UserError("the user name must not be empty")
    project_ids = list(project_ids)
    projects = list(Project.objects.filter(pk__in=project_ids))
    missing = sorted(set(project_ids) - {p.pk for p in projects})
    if missing:
        raise UserError(f"no project with id {', '.join(map(str, missing))}")

    User = get_user_model()
    generated = None
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username.strip())
        user.is_staff = user.is_superuser = role == "admin"
        if password:
            user.set_password(password)
        elif created:
            generated = secrets.token_urlsafe(12)
            user.set_password(generated)
        user.save()
        for project in projects:
            project.reviewers.add(user)
    return user, created, generated


def user_token(*, user) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
