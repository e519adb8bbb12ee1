from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def _run(*args) -> list[str]:
    out = StringIO()
    call_command("create_user", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_creates_a_reviewer_in_projects_and_prints_a_token_last(project):
    lines = _run("rita", "--role", "reviewer", "--password", "s3cret-pass", "--project", str(project.pk), "--token")
    user = get_user_model().objects.get(username="rita")
    assert not user.is_staff
    assert user.check_password("s3cret-pass")
    assert list(project.reviewers.all()) == [user]
    assert lines[-1] == Token.objects.get(user=user).key


def test_updates_an_existing_user_to_admin():
    _run("ada", "--role", "reviewer", "--password", "first-pass")
    lines = _run("ada", "--role", "admin")
    user = get_user_model().objects.get(username="ada")
    assert user.is_staff and user.is_superuser
    assert user.check_password("first-pass")
    assert lines == ["Updated admin ada"]


def test_a_new_user_without_password_gets_one_shown_once():
    lines = _run("newbie", "--role", "reviewer")
    password = lines[1].split(": ", 1)[1]
    assert get_user_model().objects.get(username="newbie").check_password(password)


def test_an_unknown_project_is_an_error_and_nothing_is_created():
    with pytest.raises(CommandError, match="no project with id 999"):
        _run("ghost", "--role", "reviewer", "--project", "999")
    assert not get_user_model().objects.filter(username="ghost").exists()
