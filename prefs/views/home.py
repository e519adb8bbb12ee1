"""The landing page: the projects this user may work on, with their own progress."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from prefs.access import is_admin, projects_for
from prefs.selectors import reviewer_progress


@login_required
def home(request):
    projects = list(projects_for(request.user).order_by("name"))
    rows = [
        {"project": project, "progress": reviewer_progress(reviewer=request.user, project=project)}
        for project in projects
    ]
    return render(request, "prefs/home.html", {"rows": rows, "is_admin": is_admin(request.user)})
