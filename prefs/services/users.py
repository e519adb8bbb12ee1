"""People: reviewers and admins, their projects, and API tokens."""

from __future__ import annotations

import contextvars
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from prefs.models import Project

ROLES = ("reviewer", "admin")


class UserError(ValueError):
    pass


def _check_username(username: str) -> str:
    """The name as Django stores it (NFKC), or UserError naming what is wrong with it.

    Names are shown on pages, in the admin and in logs: markup characters, and control or
    format characters (a right-to-left override makes `evil\u202egnp.exe` read as
    `evilexe.png`), are refused, as Django's own user forms refuse them.
    """
    User = get_user_model()
    name = User.normalize_username(username.strip())
    if not name:
        raise UserError("the user name must not be empty")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp"):
            label = unicodedata.name(char, "a control character")
            raise UserError(f"the user name must not contain U+{ord(char):04X} ({label})")
    try:
        User._meta.get_field(User.USERNAME_FIELD).clean(name, None)
    except ValidationError as exc:
        raise UserError(f"the user name {name!r} is not allowed: {' '.join(exc.messages)}") from exc
    return name


def user_create_or_update(
    *,
    username: str,
    role: str,
    password: str | None = None,
    project_ids: Iterable[int] = (),
    check_password: bool = True,
    keep_tokens: bool = False,
) -> tuple[object, bool, str | None]:
    """Creates the user or updates role, password and projects.

    Returns (user, created, generated_password); a new user given no password gets a random
    one, returned so the caller can show it once. The name must pass Django's username checks
    and the password AUTH_PASSWORD_VALIDATORS; check_password=False skips the latter, for
    tests and demos that want a known weak password. A new password revokes an existing
    user's API tokens unless keep_tokens.
    """
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    username = _check_username(username or "")
    project_ids = list(project_ids)
    projects = list(Project.objects.filter(pk__in=project_ids))
    missing = sorted(set(project_ids) - {p.pk for p in projects})
    if missing:
        raise UserError(f"no project with id {', '.join(map(str, missing))}")

    User = get_user_model()
    generated = None
    with transaction.atomic(), keeping_tokens(keep_tokens):
        user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: username})
        user.is_staff = user.is_superuser = role == "admin"
        if password:
            if check_password:
                try:
                    password_validation.validate_password(password, user)
                except ValidationError as exc:
                    # Raised inside the transaction, so a new user is not left behind.
                    raise UserError(f"the password is too weak: {' '.join(exc.messages)}") from exc
            user.set_password(password)
        elif created:
            generated = secrets.token_urlsafe(12)
            user.set_password(generated)
        user.save()
        for project in projects:
            project.reviewers.add(user)
    return user, created, generated


def user_create_if_missing(
    *,
    username: str,
    role: str,
    password: str,
    project_ids: Iterable[int] = (),
    check_password: bool = True,
) -> tuple[object, bool]:
    """Creates the user unless one of that name exists; an existing user is left exactly as it
    is (password, role, projects), so a known demo password never replaces a real one."""
    User = get_user_model()
    name = _check_username(username or "")
    existing = User._default_manager.filter(**{User.USERNAME_FIELD: name}).first()
    if existing is not None:
        return existing, False
    user, created, _ = user_create_or_update(
        username=name, role=role, password=password, project_ids=project_ids, check_password=check_password
    )
    return user, created


def user_token(*, user) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def token_revoke(*, user) -> int:
    """Deletes the user's API tokens; returns how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


# Set while a password change that keeps the API tokens is being saved (see keeping_tokens).
_KEEP_TOKENS: contextvars.ContextVar[bool] = contextvars.ContextVar("prefloop_keep_tokens", default=False)


@contextmanager
def keeping_tokens(keep: bool = True) -> Iterator[None]:
    """Password changes saved inside this block leave the user's API tokens alone."""
    reset = _KEEP_TOKENS.set(keep)
    try:
        yield
    finally:
        _KEEP_TOKENS.reset(reset)


def tokens_revoke_on_password_change(*, user) -> None:
    """Called for every saved password change (prefs.passwords): a changed password signs out
    the user's API clients too, unless the change was made inside keeping_tokens()."""
    if user.pk is not None and not _KEEP_TOKENS.get():
        token_revoke(user=user)


def user_password_change(*, user, password: str, keep_tokens: bool = False) -> None:
    """Sets a new (already validated) password; revokes the API tokens unless keep_tokens."""
    with keeping_tokens(keep_tokens):
        user.set_password(password)
        user.save(update_fields=["password"])
