"""The adapter registry: the lineage tree, one adapter's metadata, download, promote, roll back."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from prefs.models import Project
from prefs.params import is_id
from tuning.models import Adapter, AdapterPromotion, BaseModel, Evaluation
from tuning.selectors import active_adapter_map
from tuning.services.adapters import (
    AdapterError,
    adapter_ancestors,
    adapter_lineage,
    adapter_promote,
    adapter_rollback,
    adapter_slug,
    adapter_zip,
)
from tuning.views.access import admin_required
from tuning.views.jobs import _project_from_query


def _back(request, fallback: str, **kwargs):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback, **kwargs)


@require_GET
@admin_required
def adapter_registry(request):
    project = _project_from_query(request)
    active = active_adapter_map()
    trees = []
    for base in BaseModel.objects.order_by("name"):
        rows = adapter_lineage(base_model=base, project=project)
        if rows or project is None:
            trees.append({"base": base, "rows": [{"adapter": a, "depth": d, "active_in": active.get(a.pk, [])} for a, d in rows]})
    projects = Project.objects.select_related("active_adapter", "base_model").order_by("name")
    if project is not None:
        projects = projects.filter(pk=project.pk)
    history = AdapterPromotion.objects.select_related("project", "adapter", "previous", "created_by")
    if project is not None:
        history = history.filter(project=project)
    return render(
        request,
        "tuning/adapters.html",
        {"trees": trees, "project": project, "projects": projects, "history": history[:20]},
    )


@require_GET
@admin_required
def adapter_page(request, adapter_id: int):
    adapter = get_object_or_404(
        Adapter.objects.select_related("base_model", "project", "parent", "job", "preference_set"), pk=adapter_id
    )
    context = {
        "adapter": adapter,
        "ancestors": adapter_ancestors(adapter),
        "children": adapter.children.order_by("id"),
        "evaluations": Evaluation.objects.filter(after_adapter=adapter).select_related("job"),
        "active_in": Project.objects.filter(active_adapter=adapter),
        "projects": Project.objects.filter(base_model=adapter.base_model).order_by("name"),
    }
    return render(request, "tuning/adapter.html", context)


@require_GET
@admin_required
def adapter_download(request, adapter_id: int):
    adapter = get_object_or_404(Adapter, pk=adapter_id)
    try:
        archive = adapter_zip(adapter)
    except AdapterError as exc:
        raise Http404(str(exc)) from exc
    return FileResponse(archive, as_attachment=True, filename=f"{adapter_slug(adapter)}.zip", content_type="application/zip")


@require_POST
@admin_required
def adapter_promote_view(request, adapter_id: int):
    adapter = get_object_or_404(Adapter, pk=adapter_id)
    raw = request.POST.get("project") or adapter.project_id
    project = get_object_or_404(Project, pk=int(raw)) if is_id(str(raw or "")) else None
    if project is None:
        messages.error(request, "Choose the project whose active adapter this becomes.")
        return _back(request, "tuning-adapter", adapter_id=adapter.pk)
    try:
        adapter_promote(project=project, adapter=adapter, by=request.user)
    except AdapterError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{adapter.name} is now the active adapter of {project.name}.")
    return _back(request, "tuning-adapter", adapter_id=adapter.pk)


@require_POST
@admin_required
def project_rollback_view(request, project_id: int):
    project = get_object_or_404(Project, pk=project_id)
    try:
        promotion = adapter_rollback(project=project, by=request.user)
    except AdapterError as exc:
        messages.error(request, str(exc))
    else:
        name = promotion.adapter.name if promotion.adapter else "the bare base model"
        messages.success(request, f"Rolled back: {project.name} uses {name} again.")
    return _back(request, "tuning-adapters")
