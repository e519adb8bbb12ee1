from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError

from prefs.models import Assignment, Choice, Comparison, Judgment
from prefs.services import judging
from prefs.services.assignment import AssignmentError, comparison_next_for
from prefs.services.judging import Verdict, canonical_choice, judgment_record
from tests.factories import make_comparisons

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(reviewer, project):
    make_comparisons(project, 2)
    return comparison_next_for(reviewer=reviewer, project=project)


def test_left_and_right_are_stored_as_the_candidates_shown_there():
    assert canonical_choice("left", left_is_a=True) == Choice.A
    assert canonical_choice("left", left_is_a=False) == Choice.B
    assert canonical_choice("right", left_is_a=False) == Choice.A
    assert canonical_choice("tie", left_is_a=False) == Choice.TIE
    assert canonical_choice("both_bad", left_is_a=True) == Choice.BOTH_BAD


def test_a_judgment_records_the_verdict_sides_and_time(reviewer, held):
    judgment, created = judgment_record(
        reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left", 3, "  kinder  ")
    )
    assert created
    assert judgment.choice == (Choice.A if held.left_is_a else Choice.B)
    assert judgment.left_is_a == held.left_is_a
    assert judgment.strength == 3 and judgment.rationale == "kinder"
    assert judgment.ms_on_task is not None and judgment.ms_on_task >= 0
    held.refresh_from_db()
    assert held.state == Assignment.State.JUDGED
    assert Comparison.objects.get(pk=held.comparison_id).judgment_count == 1


def test_a_repeated_submit_never_makes_a_second_judgment(reviewer, held):
    first, created = judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left"))
    again, created_again = judgment_record(
        reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("right")
    )
    assert created and not created_again
    assert again.pk == first.pk and again.choice == first.choice
    assert Judgment.objects.count() == 1
    assert Comparison.objects.get(pk=held.comparison_id).judgment_count == 1


@pytest.mark.parametrize(
    ("verdict", "field"),
    [
        (Verdict("better"), "choice"),
        (Verdict("left", 0), "strength"),
        (Verdict("left", 4), "strength"),
        (Verdict("left", "2"), "strength"),
        (Verdict("left", 2, "x" * 5001), "rationale"),
    ],
)
def test_bad_verdicts_are_refused_and_nothing_is_stored(reviewer, held, verdict, field):
    with pytest.raises(AssignmentError, match=field) as info:
        judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=verdict)
    assert info.value.status == 400
    assert Judgment.objects.count() == 0
    held.refresh_from_db()
    assert held.state == Assignment.State.OPEN


def test_another_reviewers_assignment_looks_like_a_missing_one(reviewer, outsider, held):
    with pytest.raises(AssignmentError, match="No such assignment") as info:
        judgment_record(reviewer=outsider, assignment_id=held.pk, verdict=Verdict("left"))
    assert info.value.status == 404
    assert Judgment.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_submit_that_loses_a_deadlock_is_run_again_and_stored_once(reviewer, project, monkeypatch):
    make_comparisons(project, 1)
    held = comparison_next_for(reviewer=reviewer, project=project)
    real_record, calls = judging._record, []

    def deadlocked_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            # What Django raises when PostgreSQL picks this transaction as a deadlock's victim.
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected()
        return real_record(**kwargs)

    monkeypatch.setattr(judging, "_record", deadlocked_once)
    judgment, created = judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left"))
    assert created and len(calls) == 2
    assert Judgment.objects.count() == 1
    assert Comparison.objects.get(pk=held.comparison_id).judgment_count == 1


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_of_a_submit_are_not_retried(reviewer, project, monkeypatch):
    make_comparisons(project, 1)
    held = comparison_next_for(reviewer=reviewer, project=project)
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(judging, "_record", broken)
    with pytest.raises(OperationalError):
        judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left"))
    assert len(calls) == 1


def test_a_reviewer_taken_off_the_project_can_no_longer_judge_or_skip_their_hold(reviewer, project, held):
    from prefs.services.assignment import assignment_skip

    project.reviewers.remove(reviewer)
    with pytest.raises(AssignmentError, match="No such assignment") as judged:
        judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left"))
    with pytest.raises(AssignmentError, match="No such assignment") as skipped:
        assignment_skip(reviewer=reviewer, assignment_id=held.pk)
    assert judged.value.status == skipped.value.status == 404
    assert not Judgment.objects.exists()
    assert Assignment.objects.get(pk=held.pk).state == Assignment.State.OPEN
    # Back on the project, the same hold is theirs to judge again.
    project.reviewers.add(reviewer)
    judgment_record(reviewer=reviewer, assignment_id=held.pk, verdict=Verdict("left"))


def test_an_admin_may_judge_in_a_project_they_are_not_a_reviewer_of(admin_user, project):
    make_comparisons(project, 1)
    assignment = comparison_next_for(reviewer=admin_user, project=project)
    _, created = judgment_record(reviewer=admin_user, assignment_id=assignment.pk, verdict=Verdict("tie"))
    assert created
