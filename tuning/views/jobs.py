"""Job pages: the list, the launch form per kind, the live job page, cancel."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from prefs.models import Project
from prefs.params import is_id
from tuning.charts import line_chart
from tuning.forms import LaunchForm
from tuning.models import Job
from tuning.selectors import job_chart_series, job_evaluation_id, jobs_list
from tuning.services.jobs import JobError, job_cancel, job_reap_stale
from tuning.services.launch import LaunchError, job_launch
from tuning.services.params import KIND_HELP
from tuning.views.access import admin_required

# Jobs shown on the list page (newest first).
LIST_LIMIT = 200


def _project_from_query(request) -> Project | None:
    raw = request.GET.get("project", "")
    if not raw:
        return None
    if not is_id(raw):
        raise Http404("No such project.")
    return get_object_or_404(Project.objects.select_related("base_model"), pk=int(raw))


@require_GET
@admin_required
def job_list(request):
    job_reap_stale()
    project = _project_from_query(request)
    jobs = list(jobs_list(project_id=project.pk if project else None, state=request.GET.get("state") or None)[:LIST_LIMIT])
    context = {
        "jobs": jobs,
        # The list refreshes itself while something is queued or running.
        "polling": any(job.is_active for job in jobs),
        "project": project,
        "kinds": [(kind, label, KIND_HELP[kind]) for kind, label in Job.Kind.choices],
        "states": Job.State.values,
        "state": request.GET.get("state", ""),
    }
    if request.htmx:
        return render(request, "tuning/job_rows.html", context)
    return render(request, "tuning/jobs.html", context)


@require_http_methods(["GET", "POST"])
@admin_required
def job_new(request, kind: str):
    if kind not in Job.Kind.values:
        raise Http404("No such kind of job.")
    project = _project_from_query(request)
    form = LaunchForm(request.POST or None, kind=kind, project=project)
    if request.method == "POST" and form.is_valid():
        arguments = form.launch_arguments()
        chosen = get_object_or_404(Project, pk=arguments.pop("project_id"))
        try:
            job = job_launch(project=chosen, created_by=request.user, **arguments)
        except LaunchError as exc:
            form.add_launch_errors(exc.errors)
        else:
            messages.success(request, f"Job {job.pk} queued.")
            return redirect("tuning-job", job_id=job.pk)
    context = {
        "form": form,
        "kind": kind,
        "kind_label": Job.Kind(kind).label,
        "kind_help": KIND_HELP[kind],
        "kinds": Job.Kind.choices,
        "project": project,
    }
    return render(request, "tuning/launch.html", context, status=400 if form.errors else 200)


def _live_context(job: Job) -> dict:
    series = job_chart_series(job)
    charts = []
    if job.kind in (Job.Kind.DPO, Job.Kind.REWARD_MODEL, Job.Kind.REJECTION_SAMPLING) or any(series.values()):
        specs = [
            ("Loss", series["loss"], {}),
            ("Reward margin", series["margin"], {"reference": 0.0}),
            ("Preference accuracy", series["accuracy"], {"domain": (0.0, 1.0), "reference": 0.5}),
        ]
        charts = [
            {
                "title": title,
                "latest": points[-1][1] if points else None,
                # line_chart escapes every text it writes.
                "svg": mark_safe(line_chart(points, title=title, **options)),  # noqa: S308
            }
            for title, points, options in specs
        ]
    return {
        "job": job,
        "charts": charts,
        "evaluation_id": job_evaluation_id(job),
        "percent": round(job.progress * 100, 1),
    }


@require_GET
@admin_required
def job_page(request, job_id: int):
    job_reap_stale()
    job = get_object_or_404(
        Job.objects.select_related("project", "base_model", "input_adapter", "output_adapter", "preference_set", "source_job"),
        pk=job_id,
    )
    return render(request, "tuning/job.html", _live_context(job))


@require_GET
@admin_required
def job_live(request, job_id: int):
    job = get_object_or_404(Job.objects.select_related("output_adapter"), pk=job_id)
    return render(request, "tuning/job_live.html", _live_context(job))


@require_POST
@admin_required
def job_cancel_view(request, job_id: int):
    job = get_object_or_404(Job, pk=job_id)
    try:
        job = job_cancel(job=job, by=request.user)
    except JobError as exc:
        if request.htmx:
            return render(request, "tuning/job_live.html", {**_live_context(job), "error": str(exc)})
        messages.error(request, str(exc))
        return redirect("tuning-job", job_id=job.pk)
    if request.htmx:
        return render(request, "tuning/job_live.html", _live_context(job))
    messages.success(request, "Cancelled." if job.state == Job.State.CANCELLED else "Cancel requested: the job stops after its current step.")
    return redirect("tuning-job", job_id=job.pk)
