"""Reads of the prefs app that more than one door needs."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from prefs.models import Assignment, Judgment, Project
from prefs.services.assignment import available_comparisons


def reviewer_progress(*, reviewer, project: Project, now: datetime | None = None) -> dict:
    """What this reviewer has done in the project and how much is still there for them."""
    now = now or timezone.now()
    done = Judgment.objects.filter(comparison__project=project, reviewer=reviewer).count()
    # The reviewer's own hold does not fill a slot for them, so a comparison they hold is
    # counted here too.
    remaining = available_comparisons(reviewer=reviewer, project=project, now=now).count()
    total = done + remaining
    return {
        "done": done,
        "remaining": remaining,
        "percent": round(100 * done / total) if total else 100,
    }


def assignment_view(assignment: Assignment) -> dict:
    """What a reviewer may see of an assignment: texts by side, nothing about their origin."""
    comparison = assignment.comparison
    a, b = comparison.candidate_a, comparison.candidate_b
    left, right = (a, b) if assignment.left_is_a else (b, a)
    return {
        "assignment": assignment.pk,
        "prompt": {"messages": comparison.prompt.messages},
        "left": {"text": left.text},
        "right": {"text": right.text},
        "guidelines": comparison.project.guidelines,
        "expires_at": assignment.expires_at,
    }
