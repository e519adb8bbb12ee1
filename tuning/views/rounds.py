"""The rounds page: the project's loop as a timeline, and the one button that starts the next turn."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from prefs.models import Project
from prefs.params import is_id
from tuning.models import Pairing, Round
from tuning.selectors import rounds_timeline
from tuning.services.rounds import (
    RoundError,
    prompts_needing_data,
    round_busy,
    round_open,
    round_policy_get,
    round_policy_update,
    round_start,
    round_train,
)
from tuning.views.access import admin_required


def _project(project_id: int) -> Project:
    return get_object_or_404(Project.objects.select_related("base_model", "active_adapter"), pk=project_id)


@require_GET
@admin_required
def rounds_page(request, project_id: int):
    project = _project(project_id)
    context = {
        "project": project,
        "timeline": rounds_timeline(project),
        "policy": round_policy_get(project),
        "pairings": Pairing.choices,
        "open_round": round_open(project),
        "busy": round_busy(project),
        "needing_data": prompts_needing_data(project).count(),
    }
    return render(request, "tuning/rounds.html", context)


@require_POST
@admin_required
def round_start_view(request, project_id: int):
    project = _project(project_id)
    try:
        round_ = round_start(project=project, by=request.user)
    except RoundError as exc:
        messages.error(request, str(exc))
    else:
        if round_.train_job_id:
            messages.success(request, f"Round {round_.number}: every training prompt had data, so it froze set v{round_.preference_set.version} and is training.")
        else:
            messages.success(request, f"Round {round_.number} started: sampling answers for reviewers.")
    return redirect("tuning-rounds", project_id=project.pk)


@require_POST
@admin_required
def round_train_view(request, round_id: int):
    round_ = get_object_or_404(Round, pk=round_id)
    try:
        job = round_train(round_=round_, by=request.user, force=True)
    except RoundError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Round {round_.number} froze its data and is training (job {job.pk}).")
    return redirect("tuning-rounds", project_id=round_.project_id)


@require_POST
@admin_required
def round_policy_view(request, project_id: int):
    project = _project(project_id)
    raw = {name: request.POST.get(name, "") for name in ("samples", "target_judgments", "max_prompts")}
    bad = [name for name, value in raw.items() if not is_id(value)]
    if bad:
        messages.error(request, f"{', '.join(bad)}: a whole number is needed")
        return redirect("tuning-rounds", project_id=project.pk)
    try:
        round_policy_update(
            project=project,
            samples=int(raw["samples"]),
            pairing=request.POST.get("pairing", ""),
            target_judgments=int(raw["target_judgments"]),
            max_prompts=int(raw["max_prompts"]),
        )
    except RoundError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Saved: the next round samples and trains by these settings.")
    return redirect("tuning-rounds", project_id=project.pk)
