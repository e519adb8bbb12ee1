"""Shared fixtures: the three people every view's tests consider, and a project."""

from __future__ import annotations

import pytest


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
