"""Admin pages for data in and out: upload with a preview before importing, freezing
preference sets, and each version's counts, samples, diff and export buttons.

The uploaded file waits between the preview and the confirmation under MEDIA_ROOT/imports,
named by a random token; confirming imports exactly that file, and it is removed afterwards.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from prefs.access import get_project_for_admin, is_admin
from prefs.formats.jsonl import IMPORT_FORMATS
from prefs.models import PreferenceSet
from prefs.services.exports import (
    EXPORT_FORMATS,
    preference_set_diff_samples,
    preference_set_samples,
)
from prefs.services.imports import ImportRejected, ImportTooLarge, import_check, import_run
from prefs.services.snapshots import FreezeRule, PreferenceSetError, preference_set_freeze

# Uploads nobody confirmed are removed after a day.
_STALE_UPLOAD_S = 24 * 3600
_RULE_FLAGS = (
    ("include_ties", "Keep ties (both orders, half weight each)"),
    ("include_both_bad", "Keep both-bad pairs (as KTO negatives)"),
    ("include_imported", "Count imported labels"),
    ("strength_as_weight", "Strength as the weight column"),
    ("exclude_flagged", "Leave out flagged reviewers' judgments"),
)


def _uploads_dir() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _upload_path(project_id: int, token: str) -> Path:
    if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
        raise Http404("No such upload.")
    return _uploads_dir() / f"project{project_id}-{token}.upload"


def _sweep_stale_uploads() -> None:
    cutoff = time.time() - _STALE_UPLOAD_S
    for path in _uploads_dir().glob("*.upload"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def _import_form(request, project, *, error: str = "", status: int = 200):
    context = {"project": project, "formats": IMPORT_FORMATS, "error": error,
               "limit_mb": settings.PREFLOOP_IMPORT_MAX_BYTES / 1e6}
    return render(request, "prefs/import.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def import_upload(request, project_id: int):
    """The upload form; a posted file is checked whole and previewed, nothing is written."""
    project = get_project_for_admin(request.user, project_id)
    if request.method == "GET":
        return _import_form(request, project)
    upload = request.FILES.get("file")
    fmt = request.POST.get("format", "auto")
    if upload is None:
        return _import_form(request, project, error="Choose a file to import.", status=400)
    if fmt not in IMPORT_FORMATS:
        return _import_form(request, project, error=f"Unknown format {fmt!r}.", status=400)
    if upload.size > settings.PREFLOOP_IMPORT_MAX_BYTES:
        return _import_form(request, project, error=str(ImportTooLarge(settings.PREFLOOP_IMPORT_MAX_BYTES)),
                            status=413)
    _sweep_stale_uploads()
    token = secrets.token_hex(16)
    path = _upload_path(project.pk, token)
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out)
    try:
        with path.open("rb") as stream:
            check = import_check(project=project, stream=stream, fmt=fmt)
    except ImportTooLarge as exc:
        path.unlink(missing_ok=True)
        return _import_form(request, project, error=str(exc), status=413)
    except BaseException:
        # Whatever went wrong, a file nobody can confirm must not stay behind.
        path.unlink(missing_ok=True)
        raise
    if not check.ok:
        path.unlink(missing_ok=True)
    context = {
        "project": project,
        "check": check,
        "token": token if check.ok else "",
        "filename": upload.name,
        "size": upload.size,
        "queue_labelled": request.POST.get("queue_labelled") == "on",
    }
    return render(request, "prefs/import_preview.html", context, status=200 if check.ok else 400)


@login_required
@require_POST
def import_confirm(request, project_id: int):
    project = get_project_for_admin(request.user, project_id)
    path = _upload_path(project.pk, request.POST.get("token", ""))
    if not path.exists():
        messages.error(request, "That upload is gone (it was imported already or expired); upload it again.")
        return redirect("prefs-import", project_id=project.pk)
    fmt = request.POST.get("format", "auto")
    if fmt not in IMPORT_FORMATS:
        raise Http404("No such format.")
    try:
        with path.open("rb") as stream:
            result = import_run(project=project, stream=stream, fmt=fmt,
                                queue_labelled=request.POST.get("queue_labelled") == "on")
    except (ImportRejected, ImportTooLarge) as exc:
        messages.error(request, str(exc))
        return redirect("prefs-import", project_id=project.pk)
    finally:
        path.unlink(missing_ok=True)
    created = ", ".join(f"{n} {kind}" for kind, n in result.created.items())
    messages.success(request, f"Imported {result.rows} {result.format} rows: {created}; "
                              f"{result.duplicates} duplicates skipped.")
    return redirect("prefs-sets", project_id=project.pk)


@login_required
@require_http_methods(["GET", "POST"])
def sets_page(request, project_id: int):
    """The project's versions, newest first, and the form that freezes the next one."""
    project = get_project_for_admin(request.user, project_id)
    errors: list[dict] = []
    form = FreezeRule().as_dict()
    if request.method == "POST":
        form = {
            "rule": request.POST.get("rule", "majority"),
            "min_judgments": request.POST.get("min_judgments", "1"),
            "min_agreement": request.POST.get("min_agreement", "0"),
            "split": request.POST.get("split", "train"),
            **{name: request.POST.get(name) == "on" for name, _ in _RULE_FLAGS},
        }
        try:
            data = dict(form)
            data["min_judgments"] = int(data["min_judgments"])
            data["min_agreement"] = float(data["min_agreement"])
        except ValueError:
            errors = [{"field": "min_judgments / min_agreement", "message": "must be numbers"}]
        if not errors:
            try:
                frozen = preference_set_freeze(
                    project=project, rule=FreezeRule.from_data(data), created_by=request.user
                )
            except PreferenceSetError as exc:
                errors = exc.errors
            else:
                messages.success(request, f"Froze version {frozen.version}: {frozen.pair_count} pairs.")
                return redirect("prefs-set", set_id=frozen.pk)
    context = {
        "project": project,
        "sets": PreferenceSet.objects.filter(project=project).order_by("-version")[:200],
        "form": form,
        "flags": [(name, label, bool(form.get(name))) for name, label in _RULE_FLAGS],
        "errors": errors,
    }
    return render(request, "prefs/sets.html", context, status=400 if errors else 200)


@login_required
def set_page(request, set_id: int):
    if not is_admin(request.user):
        raise Http404("No such preference set.")
    frozen = get_object_or_404(PreferenceSet.objects.select_related("project", "previous"), pk=set_id)
    export_url = reverse("api-preference-set-export", args=[frozen.pk])
    context = {
        "project": frozen.project,
        "set": frozen,
        "samples": preference_set_samples(frozen),
        "diff_samples": preference_set_diff_samples(frozen),
        "exports": [(fmt, f"{export_url}?format={fmt}") for fmt in EXPORT_FORMATS],
    }
    return render(request, "prefs/set.html", context)
