"""Reads of the prefs app that more than one door needs."""

from __future__ import annotations

import functools
import json
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from prefs.models import Assignment, Candidate, Comparison, Judgment, Project, Prompt
from prefs.services.assignment import available_comparisons
from prefs.sql import fetch_one


def reviewer_progress(*, reviewer, project: Project, now: datetime | None = None) -> dict:
    """What this reviewer has done in the project and how much is still there for them."""
    now = now or timezone.now()
    done = Judgment.objects.filter(comparison__project=project, reviewer=reviewer).count()
    # A group's comparisons (an evaluation's opponents for one prompt) count once: this
    # reviewer is given only one of them.
    remaining = sum(
        available_comparisons(reviewer=reviewer, project=project)
        .order_by()
        .aggregate(
            ungrouped=Count("id", filter=Q(group_key__isnull=True)),
            groups=Count("group_key", distinct=True),
        )
        .values()
    )
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
    # The assignment service may have read the texts with the hold (PostgreSQL's fast path);
    # otherwise plain SQL, since this runs for every comparison a reviewer is shown.
    row = getattr(assignment, "pair_row", None) or fetch_one(_view_sql(), [assignment.comparison_id])
    if row is None:
        raise Comparison.DoesNotExist(f"comparison {assignment.comparison_id} does not exist")
    messages, text_a, text_b, guidelines = row
    left, right = (text_a, text_b) if assignment.left_is_a else (text_b, text_a)
    return {
        "assignment": assignment.pk,
        "revision": assignment.revision,
        "prompt": {"messages": json.loads(messages) if isinstance(messages, str) else messages},
        "left": {"text": left},
        "right": {"text": right},
        "guidelines": guidelines,
        "expires_at": assignment.expires_at,
    }


_VIEW_SQL = """
SELECT p.messages, ca.text, cb.text, pr.guidelines
FROM {comparison} c
JOIN {prompt} p ON p.id = c.prompt_id
JOIN {candidate} ca ON ca.id = c.candidate_a_id
JOIN {candidate} cb ON cb.id = c.candidate_b_id
JOIN {project} pr ON pr.id = c.project_id
WHERE c.id = %s
"""


@functools.cache
def _view_sql() -> str:
    return _VIEW_SQL.format(
        comparison=Comparison._meta.db_table,
        prompt=Prompt._meta.db_table,
        candidate=Candidate._meta.db_table,
        project=Project._meta.db_table,
    )
