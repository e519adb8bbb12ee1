"""Reads of the prefs app that more than one door needs."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from prefs.models import Assignment, Comparison, Judgment, Project
from prefs.services.assignment import available_comparisons


def reviewer_progress(*, reviewer, project: Project, now: datetime | None = None) -> dict:
    """What this reviewer has done in the project and how much is still there for them."""
    now = now or timezone.now()
    done = Judgment.objects.filter(comparison__project=project, reviewer=reviewer).count()
    remaining = available_comparisons(reviewer=reviewer, project=project).count()
    # A comparison this reviewer holds may have no open slot left (their hold took it) but
    # still waits for them.
    remaining += (
        Assignment.objects.filter(
            reviewer=reviewer,
            comparison__project=project,
            comparison__open_slots__lte=0,
            comparison__gold_choice="",
            state=Assignment.State.OPEN,
            expires_at__gt=now,
        ).count()
    )
    total = done + remaining
    return {
        "done": done,
        "remaining": remaining,
        "percent": round(100 * done / total) if total else 100,
    }


def assignment_view(assignment: Assignment) -> dict:
    """What a reviewer may see of an assignment: texts by side, nothing about their origin."""
    comparison = Comparison.objects.select_related(
        "prompt", "candidate_a", "candidate_b", "project"
    ).get(pk=assignment.comparison_id)
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
