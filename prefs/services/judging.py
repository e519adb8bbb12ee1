"""Recording a reviewer's verdict on the comparison they hold."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from prefs.access import is_admin
from prefs.models import Assignment, Choice, Comparison, Judgment, Project
from prefs.services.assignment import AssignmentError, own_assignment_locked, refuse_stale_revision
from prefs.sql import fetch_one, is_deadlock

# What the reviewer clicked, in screen terms; stored in canonical A/B terms.
SCREEN_CHOICES = ("left", "right", "tie", "both_bad")
STRENGTHS = {1: "slightly", 2: "clearly", 3: "much"}
RATIONALE_MAX_CHARS = 5000


@dataclass(frozen=True)
class Verdict:
    choice: str
    strength: int = 2
    rationale: str = ""
    # The issue of the hold the reviewer was shown (the next comparison's `revision`); None
    # accepts any, since a hold handed out again keeps its sides.
    revision: int | None = None


# The largest revision the column holds (a 32-bit integer).
MAX_REVISION = 2**31 - 1


def verdict_errors(*, choice, strength, rationale, revision=None) -> dict[str, str]:
    """Field-by-field reasons a verdict is invalid; empty when it is fine."""
    errors: dict[str, str] = {}
    if revision is not None and (
        isinstance(revision, bool) or not isinstance(revision, int) or not 1 <= revision <= MAX_REVISION
    ):
        errors["revision"] = f"must be the revision the next comparison gave, not {revision!r}"
    if choice not in SCREEN_CHOICES:
        errors["choice"] = f"must be one of {', '.join(SCREEN_CHOICES)}, not {choice!r}"
    if isinstance(strength, bool) or not isinstance(strength, int) or strength not in STRENGTHS:
        errors["strength"] = f"must be 1 (slightly), 2 (clearly) or 3 (much), not {strength!r}"
    if not isinstance(rationale, str):
        errors["rationale"] = "must be text"
    elif len(rationale) > RATIONALE_MAX_CHARS:
        errors["rationale"] = f"must be at most {RATIONALE_MAX_CHARS} characters"
    return errors


def canonical_choice(screen_choice: str, *, left_is_a: bool) -> str:
    if screen_choice == "left":
        return Choice.A if left_is_a else Choice.B
    if screen_choice == "right":
        return Choice.B if left_is_a else Choice.A
    return Choice.TIE if screen_choice == "tie" else Choice.BOTH_BAD


def judgment_record(
    *, reviewer, assignment_id: int, verdict: Verdict, now: datetime | None = None
) -> tuple[Judgment, bool]:
    """Stores the verdict once. A repeat for the same assignment returns the first judgment.

    Returns (judgment, created).
    """
    errors = verdict_errors(
        choice=verdict.choice, strength=verdict.strength, rationale=verdict.rationale,
        revision=verdict.revision,
    )
    if errors:
        raise AssignmentError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    now = now or timezone.now()
    # A submit can deadlock with the same reviewer's next-comparison claim from another tab;
    # PostgreSQL then rolls the loser back whole, so outside a caller's transaction it is
    # simply run again (a repeat finds the first judgment, so this never stores two).
    for _attempt in range(_ATTEMPTS - 1):
        try:
            return _record(reviewer=reviewer, assignment_id=assignment_id, verdict=verdict, now=now)
        except OperationalError as exc:
            if not is_deadlock(exc) or connection.in_atomic_block:
                raise
    return _record(reviewer=reviewer, assignment_id=assignment_id, verdict=verdict, now=now)


_ATTEMPTS = 3


def _record(*, reviewer, assignment_id: int, verdict: Verdict, now: datetime) -> tuple[Judgment, bool]:
    if connection.vendor == "postgresql":
        judgment = _record_in_one_statement(reviewer=reviewer, assignment_id=assignment_id, verdict=verdict, now=now)
        if judgment is not None:
            return judgment, True
    with transaction.atomic():
        # The assignment's row lock makes a double submit (double click, client retry) wait
        # for the first one and then find the judgment it stored.
        assignment = own_assignment_locked(reviewer=reviewer, assignment_id=assignment_id)
        refuse_stale_revision(assignment, verdict.revision)
        if assignment.state == Assignment.State.JUDGED:
            return Judgment.objects.get(assignment=assignment), False
        if assignment.state == Assignment.State.EXPIRED or (
            assignment.state == Assignment.State.OPEN and assignment.expires_at <= now
        ):
            raise AssignmentError(
                "Your hold on this comparison expired at "
                f"{assignment.expires_at:%Y-%m-%d %H:%M:%S} UTC and it went back to the pool; "
                "ask for the next comparison.",
                status=409,
            )
        if assignment.state != Assignment.State.OPEN:
            raise AssignmentError(
                f"This assignment was {assignment.state}; ask for the next comparison.", status=409
            )
        judgment = Judgment.objects.create(
            comparison_id=assignment.comparison_id,
            reviewer=reviewer,
            assignment=assignment,
            choice=canonical_choice(verdict.choice, left_is_a=assignment.left_is_a),
            strength=verdict.strength,
            rationale=verdict.rationale.strip(),
            left_is_a=assignment.left_is_a,
            ms_on_task=max(0, int((now - assignment.issued_at).total_seconds() * 1000)),
        )
        Comparison.objects.filter(pk=assignment.comparison_id).update(
            judgment_count=F("judgment_count") + 1, open_holds=F("open_holds") - 1
        )
        assignment.state = Assignment.State.JUDGED
        assignment.save(update_fields=["state"])
        return judgment, True


_RECORD_SQL = """WITH held AS (
    UPDATE {assignment} a SET state = 'judged'
    WHERE a.id = %(assignment)s AND a.reviewer_id = %(reviewer)s AND a.state = 'open'
      AND a.expires_at > %(now)s {member}
      AND (%(revision)s::integer IS NULL OR a.revision = %(revision)s::integer)
    RETURNING a.id, a.comparison_id, a.left_is_a, a.issued_at
), counted AS (
    UPDATE {comparison} c SET judgment_count = c.judgment_count + 1, open_holds = c.open_holds - 1
    FROM held WHERE c.id = held.comparison_id
    RETURNING c.id
)
INSERT INTO {judgment}
    (comparison_id, reviewer_id, assignment_id, imported, choice, strength, rationale,
     left_is_a, ms_on_task, created_at)
SELECT held.comparison_id, %(reviewer)s, held.id, false,
    CASE WHEN held.left_is_a THEN %(if_left_is_a)s ELSE %(if_left_is_b)s END,
    %(strength)s, %(rationale)s, held.left_is_a,
    GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (%(now)s - held.issued_at)) * 1000))::integer, %(now)s
FROM held
RETURNING id, comparison_id, choice, left_is_a, ms_on_task
"""


# A reviewer (not an admin, who may review any project) must still be on the comparison's
# project: one taken off it keeps their open hold until it expires, but no say over it.
_MEMBER_SQL = """AND EXISTS (
        SELECT 1 FROM {comparison} mc JOIN {reviewers} r ON r.{project_column} = mc.project_id
        WHERE mc.id = a.comparison_id AND r.{user_column} = %(reviewer)s)"""


@functools.cache
def _record_sql(admin: bool) -> str:
    tables = {
        "assignment": Assignment._meta.db_table,
        "comparison": Comparison._meta.db_table,
        "judgment": Judgment._meta.db_table,
    }
    reviewers = Project.reviewers.through._meta
    member = _MEMBER_SQL.format(
        comparison=tables["comparison"],
        reviewers=reviewers.db_table,
        project_column=reviewers.get_field("project").column,
        user_column=reviewers.get_field("user").column,
    )
    return _RECORD_SQL.format(**tables, member="" if admin else member)


def _record_in_one_statement(*, reviewer, assignment_id: int, verdict: Verdict, now: datetime) -> Judgment | None:
    """PostgreSQL's fast path for the common case, an open and unexpired hold: one round trip.

    The UPDATE takes the assignment's row lock first, as the general path does, and re-checks
    `state = 'open'` on the row as locked: a double submit waits for the first and then finds
    nothing to do. None means "not the common case" (already judged, expired, skipped, someone
    else's, missing, a project the reviewer was taken off, an older revision); the general path
    then answers it, with its precise message.
    """
    params = {
        "assignment": assignment_id,
        "reviewer": reviewer.pk,
        "now": now,
        "if_left_is_a": canonical_choice(verdict.choice, left_is_a=True),
        "if_left_is_b": canonical_choice(verdict.choice, left_is_a=False),
        "strength": verdict.strength,
        "rationale": verdict.rationale.strip(),
        "revision": verdict.revision,
    }
    row = fetch_one(_record_sql(is_admin(reviewer)), params)
    if row is None:
        return None
    pk, comparison_id, choice, left_is_a, ms_on_task = row
    return Judgment(
        pk=pk,
        comparison_id=comparison_id,
        reviewer=reviewer,
        assignment_id=assignment_id,
        imported=False,
        choice=choice,
        strength=verdict.strength,
        rationale=params["rationale"],
        left_is_a=left_is_a,
        ms_on_task=ms_on_task,
        created_at=now,
    )
