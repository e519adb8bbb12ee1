"""The review page: blind A-vs-B judging, keyboard first, the next pair swapped in by htmx."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from prefs.access import get_project_for_user
from prefs.params import is_id
from prefs.selectors import assignment_view, reviewer_progress
from prefs.services.assignment import AssignmentError, assignment_skip, comparison_next_for
from prefs.services.judging import MAX_REVISION, STRENGTHS, Verdict, judgment_record


def _pair_context(
    request, project, *, error: str = "", form: dict | None = None, answered: tuple | None = None
) -> dict:
    """The page's context. `form` (the reviewer's verdict, shown back with an error) is kept only
    while the pair shown is still `answered`, the (assignment, revision) it was given for: a
    verdict checked for one pair must never sit ready on another, nor on the same assignment
    handed out again (Enter would submit it unseen)."""
    busy = False
    try:
        assignment = comparison_next_for(reviewer=request.user, project=project)
    except AssignmentError as exc:
        # The reviewer's other tabs kept taking the hold first; say so rather than "all done".
        assignment, busy, error = None, True, str(exc)
    if not _same_issue(assignment, answered):
        form = None
    return {
        "project": project,
        "pair": assignment_view(assignment) if assignment else None,
        "busy": busy,
        "progress": reviewer_progress(reviewer=request.user, project=project),
        "strengths": STRENGTHS,
        "error": error,
        "form": form or {},
    }


def _same_issue(assignment, answered: tuple | None) -> bool:
    if assignment is None or answered is None or assignment.pk != answered[0]:
        return False
    # A page from before revisions were sent: the sides of a hold never change, so the same
    # assignment still shows what that verdict was about.
    return answered[1] is None or answered[1] == assignment.revision


def _answer(
    request, project, *, error: str = "", form: dict | None = None, answered: tuple | None = None,
    status: int = 200,
):
    if not request.htmx:
        # Without JavaScript: post, then redirect to the page (which shows the next pair).
        if error:
            messages.error(request, error)
        return redirect("prefs-review", project_id=project.pk)
    context = _pair_context(request, project, error=error, form=form, answered=answered)
    return render(request, "prefs/review_pair.html", context, status=status)


@require_GET
@login_required
def review_page(request, project_id: int):
    project = get_project_for_user(request.user, project_id)
    return render(request, "prefs/review.html", _pair_context(request, project))


@require_POST
@login_required
def review_judge(request, project_id: int, assignment_id: int):
    project = get_project_for_user(request.user, project_id)
    raw_strength = request.POST.get("strength", "2")
    verdict = Verdict(
        choice=request.POST.get("choice", ""),
        strength=int(raw_strength) if is_id(raw_strength) else raw_strength,
        rationale=request.POST.get("rationale", ""),
        revision=_revision(request),
    )
    try:
        judgment_record(reviewer=request.user, assignment_id=assignment_id, verdict=verdict)
    except AssignmentError as exc:
        form = {"choice": verdict.choice, "strength": verdict.strength, "rationale": verdict.rationale}
        # htmx swaps only 2xx answers by default, so the error fragment comes back as 200.
        return _answer(
            request, project, error=str(exc), form=form, answered=(assignment_id, verdict.revision)
        )
    return _answer(request, project)


def _revision(request) -> int | None:
    """The revision of the pair the page showed (a hidden field); None from an older page."""
    raw = request.POST.get("revision", "")
    return int(raw) if is_id(raw) and 0 < int(raw) <= MAX_REVISION else None


@require_POST
@login_required
def review_skip(request, project_id: int, assignment_id: int):
    project = get_project_for_user(request.user, project_id)
    try:
        assignment_skip(reviewer=request.user, assignment_id=assignment_id, revision=_revision(request))
    except AssignmentError as exc:
        return _answer(request, project, error=str(exc))
    return _answer(request, project)
