"""Handing out comparisons to reviewers.

Invariants, on PostgreSQL and on SQLite:
- a comparison gets exactly `required_judgments` judgments, from as many different reviewers;
  an unexpired hold counts as a taken slot, so no more reviewers hold it than it can take;
- a reviewer gets the comparison with the fewest judgments first, oldest first among equals,
  never one they judged or skipped, and holds at most one comparison at a time;
- of a comparison group (`group_key`: an evaluation's comparisons of one prompt, which share
  the new adapter's answer) a reviewer is given one comparison only, ever: the claim checks it,
  and the unique index `assignment_once_per_group` refuses a second one should a race get past;
- the side each candidate is shown on is drawn at random per assignment and stored; a hold
  handed out again (after it was released or expired) keeps its sides and counts up its
  `revision`, which judgments and skips may name to refuse a stale page or client.

How: each comparison row carries `judgment_count` and `open_holds`, and the database derives
`open_slots` from them; a partial index lists the open ones in hand-out order, so finding the
next comparison reads a few index entries instead of counting holds per request. Whoever
changes the counters first locks the comparison's row (SELECT ... FOR UPDATE on PostgreSQL;
SQLite runs IMMEDIATE transactions, one writer at a time) and decides on the row as locked,
which is the committed truth. Expired holds keep their slot until they are released: by the
next request that finds nothing open, by the periodic sweep below, or by their own reviewer.
One open hold per reviewer is a partial unique index, so PostgreSQL's common case (no hold yet,
or one in this project) runs as two single-statement transactions without locking the reviewer;
everything else takes the general path, which locks the reviewer's row first.
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from prefs.access import is_admin
from prefs.models import Assignment, Candidate, Comparison, Project, Prompt
from prefs.sql import fetch_all, fetch_one, is_deadlock

# Candidates examined per attempt: a few more than competing reviewers usually lock at once.
_BATCH = 8
# Seconds between sweeps of expired holds done on the way through comparison_next_for.
_SWEEP_EVERY_S = 30.0
_rng = random.SystemRandom()
_last_sweep = 0.0


class AssignmentError(Exception):
    """A request about an assignment that cannot be honoured; `status` suits an HTTP answer."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def _finished_by(reviewer):
    return Assignment.objects.filter(
        comparison=OuterRef("pk"),
        reviewer=reviewer,
        state__in=[Assignment.State.JUDGED, Assignment.State.SKIPPED],
    )


def _group_taken_by(reviewer):
    # Another comparison of the same group given to this reviewer before, in any state. A NULL
    # group_key equals nothing, so ungrouped comparisons never match.
    return Assignment.objects.filter(reviewer=reviewer, group_key=OuterRef("group_key")).exclude(
        comparison=OuterRef("pk")
    )


def available_comparisons(*, reviewer, project: Project) -> QuerySet[Comparison]:
    """Open comparisons this reviewer could be given, in the order they would be given."""
    return (
        Comparison.objects.filter(project=project, gold_choice="", open_slots__gt=0)
        .exclude(Exists(_finished_by(reviewer)))
        .exclude(Exists(_group_taken_by(reviewer)))
        .order_by("judgment_count", "created_at", "id")
    )


def _gold_comparisons(*, reviewer, project: Project) -> QuerySet[Comparison]:
    # Gold items are shown to every reviewer once, outside the k quota: their purpose is to
    # measure each reviewer against the known answer.
    return (
        Comparison.objects.filter(project=project)
        .exclude(gold_choice="")
        .exclude(Exists(_finished_by(reviewer)))
        .exclude(Exists(_group_taken_by(reviewer)))
        .order_by("created_at", "id")
    )


def _lock(comparison_id: int, *, wait: bool) -> Comparison | None:
    qs = Comparison.objects.filter(pk=comparison_id)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(skip_locked=not wait)
    return qs.first()


def _release(assignments, *, state: str) -> None:
    """Gives open holds back: their slots return to the pool."""
    for assignment in assignments:
        Assignment.objects.filter(pk=assignment.pk).update(state=state)
        Comparison.objects.filter(pk=assignment.comparison_id).update(open_holds=F("open_holds") - 1)


def holds_release_expired(*, now: datetime | None = None, limit: int = 500) -> int:
    """Returns expired holds' slots to the pool; the count released."""
    now = now or timezone.now()
    with transaction.atomic():
        qs = Assignment.objects.filter(state=Assignment.State.OPEN, expires_at__lte=now)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        expired = list(qs.order_by("expires_at")[:limit])
        # Comparison rows are locked in id order, the same order as everywhere else.
        expired.sort(key=lambda a: a.comparison_id)
        for assignment in expired:
            _lock(assignment.comparison_id, wait=True)
        _release(expired, state=Assignment.State.EXPIRED)
    return len(expired)


def _sweep_if_due(now: datetime) -> None:
    global _last_sweep
    if time.monotonic() - _last_sweep >= _SWEEP_EVERY_S:
        _last_sweep = time.monotonic()
        holds_release_expired(now=now)


def comparison_next_for(*, reviewer, project: Project, now: datetime | None = None) -> Assignment | None:
    """The reviewer's current hold in this project, or a new one; None when nothing is left."""
    now = now or timezone.now()
    _sweep_if_due(now)
    assignment = _next_once(reviewer=reviewer, project=project, now=now)
    # Nothing open: expired holds may be sitting on the slots.
    if assignment is None and holds_release_expired(now=now):
        assignment = _next_once(reviewer=reviewer, project=project, now=now)
    return assignment


def _next_once(*, reviewer, project: Project, now: datetime) -> Assignment | None:
    gold_first = project.gold_rate > 0 and _rng.random() < project.gold_rate
    # Each failed attempt means another request of this reviewer took a hold in between; two
    # tabs asking in a tight loop can collide a few times in a row.
    for _attempt in range(_ATTEMPTS):
        try:
            if connection.vendor == "postgresql" and not gold_first:
                decided, assignment = _next_without_lock(reviewer=reviewer, project=project, now=now)
                if decided:
                    return assignment
            return _next_locked(reviewer=reviewer, project=project, now=now, gold_first=gold_first)
        except IntegrityError as exc:
            # Another request of this reviewer (a second tab) took a hold a moment ago; the
            # database refused a second one. The next attempt finds that hold and returns it.
            if not _is_second_hold(exc):
                raise
        except _SecondHold:
            pass
        except OperationalError as exc:
            # Two tabs' claims inserting their holds at once can each wait for the other's row
            # in the one-hold index; PostgreSQL ends one after deadlock_timeout and rolled it
            # back whole, so asking again is safe and finds the other tab's hold.
            if not is_deadlock(exc):
                raise
    raise AssignmentError("Too many simultaneous requests for the next comparison; try again.", status=409)


def _is_second_hold(exc: IntegrityError) -> bool:
    # Any of these indexes can refuse a new hold when a second tab's hold (on any comparison, on
    # this one, or on another of its group) was committed while it claimed; all are about this
    # reviewer, and the next attempt reads that hold first.
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:
        return diag.constraint_name in _ONE_HOLD_CONSTRAINTS
    # SQLite names the columns, not the index.
    return str(exc).endswith(("prefs_assignment.reviewer_id", "prefs_assignment.group_key"))


_ATTEMPTS = 10
_ONE_HOLD_CONSTRAINTS = ("assignment_one_open_hold", "assignment_once_per_reviewer", "assignment_once_per_group")


def _next_without_lock(*, reviewer, project: Project, now: datetime) -> tuple[bool, Assignment | None]:
    """PostgreSQL's common case in two statements, each its own transaction: no hold, or one here.

    The reviewer's row is not locked: the unique index `assignment_one_open_hold` refuses a
    second open hold instead (IntegrityError, retried by the caller). Returns (False, None)
    when the general path must decide: holds to give back, or nothing free of locks.
    """
    mine = _read_holds_with_pairs(reviewer)
    if mine:
        for assignment in mine:
            if assignment.expires_at > now and assignment.project_id == project.pk:
                assignment.pair_row = (*assignment.pair_row, project.guidelines)
                return True, assignment
        return False, None
    # In a caller's transaction (tests, ATOMIC_REQUESTS) a refused claim must not abort it.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    with guard:
        assignment = _claim_in_one_statement(reviewer=reviewer, project=project, now=now)
    return assignment is not None, assignment


def _next_locked(*, reviewer, project: Project, now: datetime, gold_first: bool) -> Assignment | None:
    with transaction.atomic():
        # Locking the reviewer's row serialises one reviewer's concurrent requests (two tabs):
        # at most one hold at a time.
        mine = _lock_reviewer_and_read_holds(reviewer)
        for assignment in mine:
            if assignment.expires_at > now and assignment.project_id == project.pk:
                return assignment
        # Holds elsewhere (another project) and this reviewer's expired ones are given back.
        for assignment in sorted(mine, key=lambda a: a.comparison_id):
            _lock(assignment.comparison_id, wait=True)
        _release(mine, state=Assignment.State.RELEASED)

        pools = [_gold_comparisons, available_comparisons] if gold_first else [available_comparisons]
        for pool_of in pools:
            pool = pool_of(reviewer=reviewer, project=project)
            assignment = _claim_first_with_room(pool, reviewer=reviewer, project=project, now=now)
            if assignment is not None:
                return assignment
        return None


# NO KEY UPDATE: serialises this reviewer's general-path requests without blocking the foreign-key
# check (FOR KEY SHARE) of their own judgment insert, which would deadlock with this lock taken
# by a second tab that then waits for the judged hold's row.
_LOCK_USER_SQL = "SELECT id FROM {user} WHERE id = %s FOR NO KEY UPDATE"
_HOLDS_SQL = """
SELECT a.id, a.comparison_id, a.left_is_a, a.issued_at, a.expires_at, c.project_id, a.revision
FROM {assignment} a JOIN {comparison} c ON c.id = a.comparison_id
WHERE a.reviewer_id = %s AND a.state = 'open'
FOR UPDATE OF a
"""


# The same, without the reviewer's lock, with each held pair's texts. FOR UPDATE here only waits
# for a judgment or skip of the hold that is being written, and reads the row as it left it.
_HOLDS_WITH_PAIRS_SQL = """
SELECT a.id, a.comparison_id, a.left_is_a, a.issued_at, a.expires_at, c.project_id, a.revision,
    p.messages, ca.text, cb.text
FROM {assignment} a JOIN {comparison} c ON c.id = a.comparison_id
JOIN {prompt} p ON p.id = c.prompt_id
JOIN {candidate} ca ON ca.id = c.candidate_a_id
JOIN {candidate} cb ON cb.id = c.candidate_b_id
WHERE a.reviewer_id = %s AND a.state = 'open'
FOR UPDATE OF a
"""


def _read_holds_with_pairs(reviewer) -> list[Assignment]:
    """The reviewer's open holds, each with `project_id` and `pair_row` (messages, text A, text B)."""
    mine = []
    for row in fetch_all(_statements()["holds_with_pairs"], [reviewer.pk]):
        assignment = _open_hold(reviewer, row[:7])
        assignment.pair_row = tuple(row[7:])
        mine.append(assignment)
    return mine


def _open_hold(reviewer, row: tuple) -> Assignment:
    """An open hold from (id, comparison id, left is A, issued, expires, project id, revision)."""
    pk, comparison_id, left_is_a, issued_at, expires_at, project_id, revision = row
    assignment = Assignment(
        pk=pk,
        comparison_id=comparison_id,
        reviewer=reviewer,
        left_is_a=left_is_a,
        state=Assignment.State.OPEN,
        revision=revision,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    assignment.project_id = project_id
    return assignment


def _lock_reviewer_and_read_holds(reviewer) -> list[Assignment]:
    """Locks the reviewer's row, then returns their open holds, locked, each with `project_id`."""
    if connection.vendor != "postgresql":
        # SQLite: the IMMEDIATE transaction already holds the one write lock.
        mine = list(
            Assignment.objects.filter(reviewer=reviewer, state=Assignment.State.OPEN).select_related(
                "comparison"
            )
        )
        for assignment in mine:
            assignment.project_id = assignment.comparison.project_id
        return mine
    # Plain SQL: this runs on every request for the next comparison.
    fetch_all(_statements()["lock_user"], [reviewer.pk])
    return [_open_hold(reviewer, row) for row in fetch_all(_statements()["holds"], [reviewer.pk])]


_CLAIM_SQL = """
WITH candidate AS (
    SELECT c.id, c.group_key FROM {comparison} c
    WHERE c.project_id = %(project)s AND c.gold_choice = '' AND c.open_slots > 0
      AND NOT EXISTS (
          SELECT 1 FROM {assignment} a
          WHERE a.comparison_id = c.id AND a.reviewer_id = %(reviewer)s
            AND a.state IN ('judged', 'skipped'))
      -- One comparison of a group per reviewer (the index assignment_once_per_group also
      -- refuses a second one, should a concurrent claim of this reviewer get past this).
      AND (c.group_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM {assignment} g
          WHERE g.reviewer_id = %(reviewer)s AND g.group_key = c.group_key AND g.comparison_id <> c.id))
    ORDER BY c.judgment_count, c.created_at, c.id
    LIMIT 1
    FOR UPDATE OF c SKIP LOCKED
), held AS (
    -- An earlier hold of this reviewer on the comparison is reused only if it was given back:
    -- without the reviewer's lock, a second tab may have just taken this very comparison, and
    -- its open hold must not be counted twice or get new sides. Then nothing is held or counted.
    -- A hold handed out again keeps its sides (a stale client's "left" still means what it
    -- showed there) and counts up its revision.
    INSERT INTO {assignment} AS a
        (comparison_id, reviewer_id, left_is_a, state, revision, issued_at, expires_at, group_key)
    SELECT candidate.id, %(reviewer)s, %(left_is_a)s, 'open', 1, %(now)s, %(expires)s, candidate.group_key
    FROM candidate
    ON CONFLICT (comparison_id, reviewer_id) DO UPDATE SET
        state = 'open', revision = a.revision + 1,
        issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at
    WHERE a.state IN ('released', 'expired')
    RETURNING id, comparison_id, left_is_a, revision
), taken AS (
    UPDATE {comparison} c SET open_holds = c.open_holds + 1
    FROM held WHERE c.id = held.comparison_id
    RETURNING c.id, c.prompt_id, c.candidate_a_id, c.candidate_b_id
)
-- The claimed pair's texts come back in the same round trip.
SELECT held.id, held.comparison_id, held.left_is_a, held.revision, p.messages, ca.text, cb.text
FROM held JOIN taken ON taken.id = held.comparison_id
JOIN {prompt} p ON p.id = taken.prompt_id
JOIN {candidate} ca ON ca.id = taken.candidate_a_id
JOIN {candidate} cb ON cb.id = taken.candidate_b_id
"""


@functools.cache
def _statements() -> dict[str, str]:
    """The plain SQL above with its table names, built once per process."""
    tables = {
        "user": get_user_model()._meta.db_table,
        "assignment": Assignment._meta.db_table,
        "comparison": Comparison._meta.db_table,
        "prompt": Prompt._meta.db_table,
        "candidate": Candidate._meta.db_table,
    }
    return {
        "lock_user": _LOCK_USER_SQL.format(**tables),
        "holds": _HOLDS_SQL.format(**tables),
        "holds_with_pairs": _HOLDS_WITH_PAIRS_SQL.format(**tables),
        "claim": _CLAIM_SQL.format(**tables),
    }


def _claim_in_one_statement(*, reviewer, project: Project, now: datetime) -> Assignment | None:
    """PostgreSQL's fast path: find, lock, count and hold in one round trip, with the pair's texts.

    FOR UPDATE ... SKIP LOCKED re-checks `open_slots > 0` on the row as locked (a reviewer who
    filled it a moment ago has committed by then), and moves on to the next row when the check
    fails. None means only that nothing was free of locks; the general path then decides.
    """
    fields = {
        "left_is_a": _rng.random() < 0.5,
        "issued_at": now,
        "expires_at": now + timedelta(seconds=project.hold_timeout_s),
    }
    params = {
        "project": project.pk,
        "reviewer": reviewer.pk,
        "now": now,
        "expires": fields["expires_at"],
        "left_is_a": fields["left_is_a"],
    }
    row = fetch_one(_statements()["claim"], params)
    if row is None:
        return None
    pk, comparison_id, fields["left_is_a"], revision, *texts = row
    assignment = Assignment(
        pk=pk,
        comparison_id=comparison_id,
        reviewer=reviewer,
        state=Assignment.State.OPEN,
        revision=revision,
        **fields,
    )
    # What prefs.selectors.assignment_view would otherwise read in a round trip of its own.
    assignment.pair_row = (*texts, project.guidelines)
    return assignment


def _claim_first_with_room(pool, *, reviewer, project: Project, now: datetime) -> Assignment | None:
    # The candidate list is read without locks; candidates are then locked one by one.
    # First pass: rows another reviewer is claiming right now are skipped (SKIP LOCKED), so
    # concurrent reviewers spread over different comparisons and nobody waits. Second pass,
    # only if the first found nothing: wait for those busy rows, so "nothing left" is said
    # only after every candidate was checked under its lock. Passes run in savepoints: rolling
    # one back releases the locks it took on comparisons found full, so a transaction never
    # holds one comparison while waiting for another (which would deadlock two reviewers).
    mine = Assignment.objects.filter(comparison=OuterRef("pk"), reviewer=reviewer)
    for _round in range(5):
        rows = list(pool.annotate(mine=Exists(mine)).values_list("pk", "mine")[:_BATCH])
        if not rows:
            return None
        busy: list[tuple[int, bool]] = []
        try:
            with transaction.atomic():
                for comparison_id, has_row in rows:
                    comparison = _lock(comparison_id, wait=False)
                    if comparison is None:
                        busy.append((comparison_id, has_row))
                    elif _has_room(comparison):
                        return _hold(comparison, reviewer=reviewer, project=project, now=now, has_row=has_row)
                raise _NothingClaimed
        except _NothingClaimed:
            pass
        for comparison_id, has_row in busy:
            try:
                with transaction.atomic():
                    comparison = _lock(comparison_id, wait=True)
                    if comparison is not None and _has_room(comparison):
                        return _hold(comparison, reviewer=reviewer, project=project, now=now, has_row=has_row)
                    raise _NothingClaimed
            except _NothingClaimed:
                pass
    return None


class _NothingClaimed(Exception):
    pass


class _SecondHold(Exception):
    """Another request of the same reviewer took a hold while this one was claiming."""


def _has_room(comparison: Comparison) -> bool:
    return bool(comparison.gold_choice) or comparison.open_slots > 0


def _hold(comparison: Comparison, *, reviewer, project: Project, now: datetime, has_row: bool) -> Assignment:
    fields = {
        "left_is_a": _rng.random() < 0.5,
        "state": Assignment.State.OPEN,
        "issued_at": now,
        "expires_at": now + timedelta(seconds=project.hold_timeout_s),
    }
    Comparison.objects.filter(pk=comparison.pk).update(open_holds=F("open_holds") + 1)
    if has_row:
        # One row per reviewer and comparison: an earlier released or expired hold is reused,
        # with its sides (a stale page's "left" still means what it showed there) and the next
        # revision. Not one that PostgreSQL's fast path (which does not take the reviewer's
        # lock) opened for a second tab a moment ago: the caller retries and returns that hold.
        reissued = {key: value for key, value in fields.items() if key != "left_is_a"}
        reused = Assignment.objects.filter(
            comparison=comparison,
            reviewer=reviewer,
            state__in=[Assignment.State.RELEASED, Assignment.State.EXPIRED],
        ).update(revision=F("revision") + 1, **reissued)
        if not reused:
            raise _SecondHold
        assignment = Assignment.objects.get(comparison=comparison, reviewer=reviewer)
    else:
        assignment = Assignment.objects.create(
            comparison=comparison, reviewer=reviewer, group_key=comparison.group_key, **fields
        )
    assignment.comparison = comparison
    return assignment


def assignment_skip(
    *, reviewer, assignment_id: int, revision: int | None = None, now: datetime | None = None
) -> Assignment:
    """Gives the comparison back; this reviewer is not offered it again.

    `revision`, when given, is the issue of the hold the reviewer was shown (see
    `refuse_stale_revision`).
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = own_assignment_locked(reviewer=reviewer, assignment_id=assignment_id)
        refuse_stale_revision(assignment, revision)
        if assignment.state == Assignment.State.JUDGED:
            raise AssignmentError("This comparison is already judged; it cannot be skipped.", status=409)
        if assignment.state == Assignment.State.SKIPPED:
            return assignment
        if assignment.state == Assignment.State.OPEN:
            _lock(assignment.comparison_id, wait=True)
            Comparison.objects.filter(pk=assignment.comparison_id).update(
                open_holds=F("open_holds") - 1
            )
        assignment.state = Assignment.State.SKIPPED
        assignment.expires_at = now
        assignment.save(update_fields=["state", "expires_at"])
        return assignment


def refuse_stale_revision(assignment: Assignment, revision: int | None) -> None:
    """409 when a page or client answers an earlier issue of a hold that was handed out again.

    The sides stay the same across issues, so a verdict without a revision is still about what
    the client saw; one that names its revision is held to it.
    """
    if revision is not None and revision != assignment.revision:
        raise AssignmentError(
            f"This comparison was handed out again (revision {assignment.revision}) after the "
            f"view you answered (revision {revision}); ask for the next comparison and answer "
            "what it shows.",
            status=409,
        )


def own_assignment_locked(*, reviewer, assignment_id: int) -> Assignment:
    qs = Assignment.objects.select_for_update(of=("self",)).filter(pk=assignment_id, reviewer=reviewer)
    if not is_admin(reviewer):
        # A reviewer taken off the project keeps no say over the hold they still have (until it
        # expires): membership is checked again on every judgment and skip.
        qs = qs.filter(
            Exists(
                Project.reviewers.through.objects.filter(
                    project_id=OuterRef("comparison__project_id"), user_id=reviewer.pk
                )
            )
        )
    assignment = qs.first()
    if assignment is None:
        # Someone else's assignment, or one in a project the reviewer no longer belongs to,
        # answers exactly like a missing one (as a project they cannot see does).
        raise AssignmentError("No such assignment.", status=404)
    return assignment
