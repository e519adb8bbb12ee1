"""Admins create projects and change their settings and reviewers."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from prefs.access import get_project_for_user, is_admin
from prefs.forms import ProjectForm
from prefs.services.projects import project_create, project_update


def _require_admin(request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("Only admins may change projects.")


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    _require_admin(request)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        project = project_create(reviewers=data.pop("reviewers"), **data)
        messages.success(request, f"Created {project.name}.")
        return redirect("home")
    return render(request, "prefs/project_form.html", {"form": form, "project": None})


@login_required
@require_http_methods(["GET", "POST"])
def project_settings(request, project_id: int):
    _require_admin(request)
    project = get_project_for_user(request.user, project_id)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        project_update(project=project, reviewers=data.pop("reviewers"), **data)
        messages.success(request, f"Saved {project.name}.")
        return redirect("home")
    if request.method == "GET":
        form.initial["reviewers"] = list(project.reviewers.all())
    return render(request, "prefs/project_form.html", {"form": form, "project": project})
