"""Who may see what. Every view and endpoint goes through these helpers.

Admins (staff) see every project; a reviewer sees only the projects they belong to. An
outsider asking for a project gets a 404, the same answer as for a project that does not exist,
so ids reveal nothing.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from prefs.models import Project


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
        return projects_for(user).get(pk=project_id)
    except (Project.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such project.") from exc


def get_project_for_admin(user, project_id: int) -> Project:
    """404 for anyone who is not an admin, as for a missing project."""
    if not is_admin(user):
        raise Http404("No such project.")
    return get_project_for_user(user, project_id)
