"""Shared fixtures: the three people every view's tests consider, and a project."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file, not memory.

    The worker tests (tests/workers) run a real Celery worker in another process, which can only
    reach a database that lives in a file (or a server); one file per test session.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    test = database.setdefault("TEST", {})
    if database["ENGINE"] == "django.db.backends.sqlite3" and not test.get("NAME"):
        test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user(
        "ada", password="ada-password", is_staff=True, is_superuser=True
    )


@pytest.fixture
def reviewer(django_user_model, project):
    user = django_user_model.objects.create_user("rita", password="rita-password")
    project.reviewers.add(user)
    return user


@pytest.fixture
def outsider(django_user_model, other_project):
    """A reviewer, but of another project."""
    user = django_user_model.objects.create_user("otto", password="otto-password")
    other_project.reviewers.add(user)
    return user


@pytest.fixture
def project(db):
    from prefs.models import Project

    return Project.objects.create(name="Helpfulness", guidelines="Prefer the *kinder* answer.")


@pytest.fixture
def other_project(db):
    from prefs.models import Project

    return Project.objects.create(name="Elsewhere", guidelines="Other rules.")
