"""Handing out comparisons to reviewers.

Invariants, on PostgreSQL and on SQLite:
- a comparison gets exactly `required_judgments` judgments, from as many different reviewers;
  an unexpired hold counts as a taken slot, so no more reviewers hold it than it can take;
- a reviewer gets the comparison with the fewest judgments first, oldest first among equals,
  never one they judged or skipped, and holds at most one comparison at a time;
- the side each candidate is shown on is drawn at random per assignment and stored.

Concurrency: whoever adds a hold or a judgment to a comparison first locks the comparison's row
(SELECT ... FOR UPDATE on PostgreSQL; SQLite runs IMMEDIATE transactions, one writer at a time).
The capacity check is repeated after the lock, because the first read may have been taken before
a competing transaction committed its hold.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from prefs.models import Assignment, Comparison, Project

# Candidates examined per attempt: a few more than competing reviewers usually lock at once.
_BATCH = 8
_rng = random.SystemRandom()


class AssignmentError(Exception):
    """A request about an assignment that cannot be honoured; `status` suits an HTTP answer."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def _active_holds(now: datetime, *, excluding_reviewer) -> Subquery:
    holds = (
        Assignment.objects.filter(
            comparison=OuterRef("pk"), state=Assignment.State.OPEN, expires_at__gt=now
        )
        .exclude(reviewer=excluding_reviewer)
        .order_by()
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(holds, output_field=IntegerField()), 0)


def available_comparisons(*, reviewer, project: Project, now: datetime) -> QuerySet[Comparison]:
    """Comparisons this reviewer could be given now, in the order they would be given."""
    finished_by_reviewer = Assignment.objects.filter(
        comparison=OuterRef("pk"),
        reviewer=reviewer,
        state__in=[Assignment.State.JUDGED, Assignment.State.SKIPPED],
    )
    return (
        Comparison.objects.filter(project=project, judgment_count__lt=F("required_judgments"))
        .filter(gold_choice="")
        .exclude(Exists(finished_by_reviewer))
        .annotate(holds=_active_holds(now, excluding_reviewer=reviewer))
        .filter(judgment_count__lt=F("required_judgments") - F("holds"))
        .order_by("judgment_count", "created_at", "id")
    )


def _gold_comparisons(*, reviewer, project: Project) -> QuerySet[Comparison]:
    # Gold items are shown to every reviewer once, outside the k quota: their purpose is to
    # measure each reviewer against the known answer.
    seen = Assignment.objects.filter(
        comparison=OuterRef("pk"),
        reviewer=reviewer,
        state__in=[Assignment.State.JUDGED, Assignment.State.SKIPPED],
    )
    return (
        Comparison.objects.filter(project=project)
        .exclude(gold_choice="")
        .exclude(Exists(seen))
        .order_by("created_at", "id")
    )


def _try_lock(comparison_id: int, *, wait: bool) -> Comparison | None:
    qs = Comparison.objects.filter(pk=comparison_id)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(skip_locked=not wait)
    return qs.first()


def _still_has_room(comparison: Comparison, *, reviewer, now: datetime) -> bool:
    if comparison.gold_choice:
        return True
    fresh = Comparison.objects.filter(pk=comparison.pk).values_list("judgment_count", flat=True)[0]
    holds = (
        Assignment.objects.filter(
            comparison=comparison, state=Assignment.State.OPEN, expires_at__gt=now
        )
        .exclude(reviewer=reviewer)
        .count()
    )
    return fresh + holds < comparison.required_judgments


def _hold(comparison: Comparison, *, reviewer, project: Project, now: datetime) -> Assignment:
    expires = now + timedelta(seconds=project.hold_timeout_s)
    left_is_a = _rng.random() < 0.5
    # An earlier hold of this reviewer on this comparison (expired or released) is reused:
    # one row per reviewer and comparison.
    assignment, _ = Assignment.objects.update_or_create(
        comparison=comparison,
        reviewer=reviewer,
        defaults={
            "left_is_a": left_is_a,
            "state": Assignment.State.OPEN,
            "issued_at": now,
            "expires_at": expires,
        },
    )
    return assignment


def comparison_next_for(*, reviewer, project: Project, now: datetime | None = None) -> Assignment | None:
    """The reviewer's current hold in this project, or a new one; None when nothing is left."""
    now = now or timezone.now()
    with transaction.atomic():
        # Serialises one reviewer's concurrent requests (two tabs): at most one hold at a time.
        get_user_model().objects.select_for_update().filter(pk=reviewer.pk).first()

        current = (
            Assignment.objects.select_related("comparison")
            .filter(
                reviewer=reviewer,
                state=Assignment.State.OPEN,
                expires_at__gt=now,
                comparison__project=project,
            )
            .order_by("-issued_at")
            .first()
        )
        if current is not None:
            return current
        # Holds elsewhere (another project, or expired ones) are given back first.
        Assignment.objects.filter(reviewer=reviewer, state=Assignment.State.OPEN).update(
            state=Assignment.State.RELEASED
        )

        pools = [available_comparisons(reviewer=reviewer, project=project, now=now)]
        if project.gold_rate > 0 and _rng.random() < project.gold_rate:
            pools.insert(0, _gold_comparisons(reviewer=reviewer, project=project))
        for pool in pools:
            assignment = _claim_first_with_room(pool, reviewer=reviewer, project=project, now=now)
            if assignment is not None:
                return assignment
        return None


def _claim_first_with_room(pool, *, reviewer, project: Project, now: datetime) -> Assignment | None:
    # The candidate list is read without locks; each candidate is then locked on its own.
    # Rows another reviewer is claiming right now are passed over first (skip locked) and
    # waited for only if nothing else fits, so "nothing left" is said only after every
    # candidate was checked under its lock. Each attempt runs in a savepoint: rolling back to
    # it releases the lock on a comparison found full, so a transaction never holds one
    # comparison while waiting for another (which deadlocks two reviewers).
    for _round in range(5):
        ids = list(pool.values_list("pk", flat=True)[:_BATCH])
        if not ids:
            return None
        busy: list[int] = []
        for wait in (False, True):
            for comparison_id in busy[:] if wait else ids:
                outcome = _attempt(comparison_id, wait=wait, reviewer=reviewer, project=project, now=now)
                if isinstance(outcome, Assignment):
                    return outcome
                if outcome == "busy":
                    busy.append(comparison_id)
    return None


class _Full(Exception):
    pass


def _attempt(comparison_id: int, *, wait: bool, reviewer, project: Project, now: datetime):
    try:
        with transaction.atomic():
            comparison = _try_lock(comparison_id, wait=wait)
            if comparison is None:
                return "busy" if not wait else "gone"
            if not _still_has_room(comparison, reviewer=reviewer, now=now):
                raise _Full
            return _hold(comparison, reviewer=reviewer, project=project, now=now)
    except _Full:
        return "full"


def assignment_skip(*, reviewer, assignment_id: int, now: datetime | None = None) -> Assignment:
    """Gives the comparison back; this reviewer is not offered it again."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _own_assignment_locked(reviewer=reviewer, assignment_id=assignment_id)
        if assignment.state == Assignment.State.JUDGED:
            raise AssignmentError("This comparison is already judged; it cannot be skipped.", status=409)
        assignment.state = Assignment.State.SKIPPED
        assignment.expires_at = now
        assignment.save(update_fields=["state", "expires_at"])
        return assignment


def _own_assignment_locked(*, reviewer, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update()
        .select_related("comparison")
        .filter(pk=assignment_id, reviewer=reviewer)
        .first()
    )
    if assignment is None:
        # Someone else's assignment answers exactly like a missing one.
        raise AssignmentError("No such assignment.", status=404)
    return assignment


def own_assignment_locked(*, reviewer, assignment_id: int) -> Assignment:
    return _own_assignment_locked(reviewer=reviewer, assignment_id=assignment_id)


def open_holds_filter(now: datetime) -> Q:
    return Q(state=Assignment.State.OPEN, expires_at__gt=now)
