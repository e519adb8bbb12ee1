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


def test_a_weak_password_is_refused_and_nothing_is_created():
    with pytest.raises(CommandError, match="too weak.*too short"):
        _run("weakling", "--role", "reviewer", "--password", "123")
    assert not get_user_model().objects.filter(username="weakling").exists()


def test_a_weak_password_does_not_replace_a_strong_one():
    _run("ada", "--role", "admin", "--password", "first-pass")
    with pytest.raises(CommandError, match="too weak"):
        _run("ada", "--role", "admin", "--password", "password1")
    assert get_user_model().objects.get(username="ada").check_password("first-pass")


def test_force_accepts_a_weak_password_for_tests_and_demos():
    _run("demo", "--role", "reviewer", "--password", "123", "--force")
    assert get_user_model().objects.get(username="demo").check_password("123")


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        'ada"onmouseover=x',
        "bob&co",
        "evil\u202egnp.exe",
        "a\u2066b",
        "zero\u200bwidth",
        "tab\there",
        "two words",
    ],
)
def test_names_with_markup_or_control_characters_are_refused(name):
    with pytest.raises(CommandError, match="user name"):
        _run(name, "--role", "reviewer", "--password", "good-long-password", "--force")
    assert not get_user_model().objects.exists()


def test_a_right_to_left_override_is_named_in_the_error():
    with pytest.raises(CommandError, match=r"U\+202E \(RIGHT-TO-LEFT OVERRIDE\)"):
        _run("evil\u202egnp.exe", "--role", "reviewer")


def test_a_new_password_revokes_the_users_api_tokens_unless_kept():
    first = _run("ada", "--role", "admin", "--password", "first-pass", "--token")[-1]
    _run("ada", "--role", "admin", "--password", "second-pass")
    assert not Token.objects.filter(key=first).exists()

    second = _run("ada", "--role", "admin", "--token")[-1]
    _run("ada", "--role", "admin", "--password", "third-pass", "--keep-tokens")
    assert Token.objects.filter(key=second).exists()
    # A change of role alone leaves the token alone too.
    _run("ada", "--role", "reviewer")
    assert Token.objects.filter(key=second).exists()
