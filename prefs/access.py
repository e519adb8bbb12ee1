"""Who may see what. Every view and endpoint goes through these helpers.

Admins (staff) see every project; a reviewer sees only the projects they belong to. An
outsider asking for a project gets a 404, the same answer as for a project that does not exist,
so ids reveal nothing.
"""

from __future__ import annotations

import functools

from django.db.models import QuerySet
from django.http import Http404

from prefs.models import Project
from prefs.params import MAX_ID
from prefs.sql import columns_of, fetch_instance


def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_staff)


def projects_for(user) -> QuerySet[Project]:
    if is_admin(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(reviewers=user)


def get_project_for_user(user, project_id: int) -> Project:
    try:
        project_id = int(project_id)
    except (ValueError, TypeError) as exc:
        raise Http404("No such project.") from exc
    # Plain SQL below: a number past the key's range would fail in the driver, not match nothing.
    if not 0 < project_id <= MAX_ID or not user.is_authenticated:
        raise Http404("No such project.")
    # Plain SQL: every review request asks this first.
    admin = is_admin(user)
    project = fetch_instance(Project, _project_sql(admin), [project_id] if admin else [project_id, user.pk])
    if project is None:
        raise Http404("No such project.")
    return project


@functools.cache
def _project_sql(admin: bool) -> str:
    reviewers = Project.reviewers.through._meta
    return (_PROJECT_SQL if admin else _PROJECT_OF_REVIEWER_SQL).format(
        columns=columns_of(Project, "p"),
        project=Project._meta.db_table,
        reviewers=reviewers.db_table,
        project_column=reviewers.get_field("project").column,
        user_column=reviewers.get_field("user").column,
    )


_PROJECT_SQL = "SELECT {columns} FROM {project} p WHERE p.id = %s"
_PROJECT_OF_REVIEWER_SQL = """
SELECT {columns} FROM {project} p
WHERE p.id = %s AND EXISTS (
    SELECT 1 FROM {reviewers} r WHERE r.{project_column} = p.id AND r.{user_column} = %s)
"""


def get_project_for_admin(user, project_id: int) -> Project:
    """404 for anyone who is not an admin, as for a missing project."""
    if not is_admin(user):
        raise Http404("No such project.")
    return get_project_for_user(user, project_id)
