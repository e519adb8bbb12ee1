from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from prefs.models import Assignment, Comparison, Judgment
from prefs.services import assignment as assignment_service
from prefs.services.assignment import AssignmentError, assignment_skip, comparison_next_for
from prefs.services.judging import Verdict, judgment_record
from tests.factories import make_comparisons, make_reviewers

pytestmark = pytest.mark.django_db


def _judge(user, project, choice="left"):
    assignment = comparison_next_for(reviewer=user, project=project)
    assert assignment is not None
    judgment_record(reviewer=user, assignment_id=assignment.pk, verdict=Verdict(choice=choice))
    return assignment


def test_reviewer_gets_the_comparison_with_fewest_judgments_first(django_user_model, project):
    project.overlap = 2
    project.save()
    first, second = make_comparisons(project, 2)
    a, b = make_reviewers(django_user_model, project, 2)
    assert _judge(a, project).comparison_id == first.pk
    # b is offered the untouched comparison before the half-judged one.
    assert comparison_next_for(reviewer=b, project=project).comparison_id == second.pk


def test_oldest_comparison_comes_first_among_equals(django_user_model, project):
    comparisons = make_comparisons(project, 3)
    (user,) = make_reviewers(django_user_model, project, 1)
    assert comparison_next_for(reviewer=user, project=project).comparison_id == comparisons[0].pk


def test_reviewer_never_sees_a_comparison_twice(django_user_model, project):
    project.overlap = 3
    project.save()
    make_comparisons(project, 4)
    (user,) = make_reviewers(django_user_model, project, 1)
    seen = [_judge(user, project).comparison_id for _ in range(2)]
    skipped = comparison_next_for(reviewer=user, project=project)
    assignment_skip(reviewer=user, assignment_id=skipped.pk)
    seen.append(skipped.comparison_id)
    seen.append(_judge(user, project).comparison_id)
    assert len(set(seen)) == 4
    assert comparison_next_for(reviewer=user, project=project) is None


def test_a_reviewer_holds_one_comparison_at_a_time(django_user_model, project):
    make_comparisons(project, 3)
    (user,) = make_reviewers(django_user_model, project, 1)
    first = comparison_next_for(reviewer=user, project=project)
    again = comparison_next_for(reviewer=user, project=project)
    assert again.pk == first.pk
    assert Assignment.objects.filter(reviewer=user, state="open").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_reviewer_asking_from_many_tabs_at_once_gets_one_hold(django_user_model, project):
    """Real threads, one reviewer: every tab is shown the same comparison, and one slot is taken."""
    make_comparisons(project, 5)
    (user,) = make_reviewers(django_user_model, project, 1)
    tabs = 8
    start = threading.Barrier(tabs)
    shown: list[int] = []
    errors: list[BaseException] = []

    def ask():
        try:
            start.wait()
            shown.append(comparison_next_for(reviewer=user, project=project).pk)
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            connection.close()

    for _round in range(3):
        Assignment.objects.filter(reviewer=user).update(state=Assignment.State.RELEASED)
        Comparison.objects.update(open_holds=0)
        shown.clear()
        threads = [threading.Thread(target=ask) for _ in range(tabs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        close_old_connections()
        assert errors == []
        assert len(shown) == tabs and len(set(shown)) == 1
        assert Assignment.objects.filter(reviewer=user, state="open").count() == 1
        assert sum(Comparison.objects.values_list("open_holds", flat=True)) == 1


def test_a_claim_that_missed_a_hold_just_taken_does_not_take_it_again(django_user_model, project, monkeypatch):
    """PostgreSQL reads the reviewer's holds, then claims; a second tab's hold can land between."""
    project.overlap = 2
    project.save()
    (comparison,) = make_comparisons(project, 1)
    (user,) = make_reviewers(django_user_model, project, 1)
    first = comparison_next_for(reviewer=user, project=project)
    # As if the holds were read just before that hold was committed.
    monkeypatch.setattr(assignment_service, "_read_holds_with_pairs", lambda reviewer: [])
    again = comparison_next_for(reviewer=user, project=project)
    assert again.pk == first.pk
    # Same sides as first shown, and one slot taken, not two.
    assert Assignment.objects.get(pk=first.pk).left_is_a == first.left_is_a
    comparison.refresh_from_db()
    assert (comparison.open_holds, comparison.open_slots) == (1, 1)


def test_asking_in_another_project_releases_the_first_hold(django_user_model, project, other_project):
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    (user,) = make_reviewers(django_user_model, project, 1)
    other_project.reviewers.add(user)
    here = comparison_next_for(reviewer=user, project=project)
    comparison_next_for(reviewer=user, project=other_project)
    here.refresh_from_db()
    assert here.state == Assignment.State.RELEASED
    assert Assignment.objects.filter(reviewer=user, state="open").count() == 1


def test_an_expired_hold_returns_the_comparison_to_the_pool(django_user_model, project):
    (comparison,) = make_comparisons(project, 1)
    a, b = make_reviewers(django_user_model, project, 2)
    held = comparison_next_for(reviewer=a, project=project)
    assert comparison_next_for(reviewer=b, project=project) is None  # the only slot is held
    later = timezone.now() + timedelta(seconds=project.hold_timeout_s + 1)
    taken = comparison_next_for(reviewer=b, project=project, now=later)
    assert taken is not None and taken.comparison_id == comparison.pk
    # The first reviewer's late verdict is refused and nothing is stored.
    with pytest.raises(AssignmentError, match="expired") as info:
        judgment_record(reviewer=a, assignment_id=held.pk, verdict=Verdict("left"), now=later)
    assert info.value.status == 409
    assert Judgment.objects.count() == 0


def test_a_skipped_comparison_goes_to_someone_else(django_user_model, project):
    (comparison,) = make_comparisons(project, 1)
    a, b = make_reviewers(django_user_model, project, 2)
    held = comparison_next_for(reviewer=a, project=project)
    assignment_skip(reviewer=a, assignment_id=held.pk)
    assert comparison_next_for(reviewer=a, project=project) is None
    assert comparison_next_for(reviewer=b, project=project).comparison_id == comparison.pk


def test_a_judged_comparison_cannot_be_skipped(django_user_model, project):
    make_comparisons(project, 1)
    (user,) = make_reviewers(django_user_model, project, 1)
    assignment = _judge(user, project)
    with pytest.raises(AssignmentError) as info:
        assignment_skip(reviewer=user, assignment_id=assignment.pk)
    assert info.value.status == 409


def test_sides_are_drawn_at_random_per_assignment(django_user_model, project):
    comparisons = make_comparisons(project, 1000, required=1)
    (user,) = make_reviewers(django_user_model, project, 1)
    lefts = Counter()
    for _ in comparisons:
        assignment = comparison_next_for(reviewer=user, project=project)
        lefts[assignment.left_is_a] += 1
        assignment_skip(reviewer=user, assignment_id=assignment.pk)
    assert 400 <= lefts[True] <= 600
    assert Assignment.objects.filter(reviewer=user).count() == 1000


def test_gold_comparisons_are_mixed_in_for_every_reviewer(django_user_model, project):
    project.gold_rate = 1.0
    project.save()
    make_comparisons(project, 2)
    (gold,) = make_comparisons(project, 1, prefix="gold", gold_choice="A")
    a, b = make_reviewers(django_user_model, project, 2)
    # Gold items sit outside the k quota: each reviewer gets the same one.
    assert _judge(a, project).comparison_id == gold.pk
    assert _judge(b, project).comparison_id == gold.pk
    assert _judge(a, project).comparison_id != gold.pk


@pytest.mark.django_db(transaction=True)
def test_k_is_respected_with_many_concurrent_reviewers(django_user_model, project):
    """Real threads against the real database (PostgreSQL in CI): exactly k per comparison."""
    k, reviewers_n, comparisons_n = 3, 12, 10
    project.overlap = k
    project.save()
    make_comparisons(project, comparisons_n)
    reviewers = make_reviewers(django_user_model, project, reviewers_n)
    errors: list[BaseException] = []
    start = threading.Barrier(reviewers_n)

    def work(user):
        try:
            start.wait()
            while True:
                assignment = comparison_next_for(reviewer=user, project=project)
                if assignment is None:
                    return
                judgment_record(
                    reviewer=user, assignment_id=assignment.pk, verdict=Verdict("right")
                )
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    close_old_connections()
    assert errors == []
    per_comparison = Counter(Judgment.objects.values_list("comparison_id", flat=True))
    assert len(per_comparison) == comparisons_n
    assert set(per_comparison.values()) == {k}
    pairs = list(Judgment.objects.values_list("comparison_id", "reviewer_id"))
    assert len(pairs) == len(set(pairs)) == comparisons_n * k
    # The queue's counters agree with the rows they summarise.
    for comparison in Comparison.objects.all():
        assert comparison.judgment_count == per_comparison[comparison.pk]
        assert comparison.open_holds == 0 and comparison.open_slots == 0


def test_skips_releases_and_expiry_give_slots_back(django_user_model, project, other_project):
    (comparison,) = make_comparisons(project, 1)
    a, b = make_reviewers(django_user_model, project, 2)
    other_project.reviewers.add(a)
    held = comparison_next_for(reviewer=a, project=project)
    comparison.refresh_from_db()
    assert (comparison.open_holds, comparison.open_slots) == (1, 0)
    comparison_next_for(reviewer=a, project=other_project)  # releases the first hold
    comparison.refresh_from_db()
    assert (comparison.open_holds, comparison.open_slots) == (0, 1)
    held = comparison_next_for(reviewer=b, project=project)
    assignment_skip(reviewer=b, assignment_id=held.pk)
    comparison.refresh_from_db()
    assert (comparison.open_holds, comparison.open_slots) == (0, 1)


def test_a_hold_handed_out_again_keeps_its_sides_and_counts_a_new_revision(django_user_model, project, other_project):
    """Both ways back: given up for another project (the general path), and expired, then asked
    for with no hold left (PostgreSQL's one-statement claim)."""
    (comparison,) = make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    (user,) = make_reviewers(django_user_model, project, 1)
    other_project.reviewers.add(user)
    first = comparison_next_for(reviewer=user, project=project)
    assert first.revision == 1
    seen = [first]
    now = timezone.now()
    for round_ in range(8):
        if round_ % 2:
            comparison_next_for(reviewer=user, project=other_project, now=now)
        else:
            now += timedelta(seconds=project.hold_timeout_s + 1)
            assignment_service.holds_release_expired(now=now)
        seen.append(comparison_next_for(reviewer=user, project=project, now=now))
    assert {a.pk for a in seen} == {first.pk}
    assert {a.left_is_a for a in seen} == {first.left_is_a}
    assert [a.revision for a in seen] == list(range(1, 10))
    stored = Assignment.objects.get(pk=first.pk)
    assert (stored.left_is_a, stored.revision, stored.state) == (first.left_is_a, 9, Assignment.State.OPEN)
    comparison.refresh_from_db()
    assert comparison.open_holds == 1


def test_a_skip_for_an_older_revision_is_refused(django_user_model, project, other_project):
    make_comparisons(project, 1)
    make_comparisons(other_project, 1, prefix="o")
    (user,) = make_reviewers(django_user_model, project, 1)
    other_project.reviewers.add(user)
    first = comparison_next_for(reviewer=user, project=project)
    comparison_next_for(reviewer=user, project=other_project)
    again = comparison_next_for(reviewer=user, project=project)
    with pytest.raises(AssignmentError, match="handed out again") as info:
        assignment_skip(reviewer=user, assignment_id=first.pk, revision=first.revision)
    assert info.value.status == 409
    assert assignment_skip(reviewer=user, assignment_id=again.pk, revision=again.revision).state == "skipped"


def _evaluation_like(project, *, groups: int, opponents=("before", "base")) -> list[list[Comparison]]:
    """Per prompt, one comparison per opponent, all holding the same "after" text and one group."""
    from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create

    made = []
    for index in range(groups):
        prompt = prompt_get_or_create(project=project, messages=[{"role": "user", "content": f"held out {index}?"}])
        made.append([
            comparison_create(
                project=project, prompt=prompt,
                a=CandidateSpec(f"after {index}", source="after"), b=CandidateSpec(f"{arm} {index}", source=arm),
                origin=Comparison.Origin.EVALUATION, group_key=f"evaluation:1:prompt:{prompt.pk}",
            )
            for arm in opponents
        ])
    return made


def test_a_reviewer_is_given_one_comparison_of_a_group_however_the_hold_ends(django_user_model, project, other_project):
    """Two opponents per prompt share the after text. Judged, skipped, given back for another
    project or expired: the reviewer is never given the group's other comparison."""
    project.overlap = 2
    project.save()
    groups = _evaluation_like(project, groups=2)
    (loose,) = make_comparisons(project, 1, prefix="loose")
    make_comparisons(other_project, 3, prefix="o")
    group_of = {c.pk: index for index, group in enumerate(groups) for c in group}
    judge, skipper, wanderer, sleeper = make_reviewers(django_user_model, project, 4)
    other_project.reviewers.add(wanderer)

    given = [_judge(judge, project).comparison_id for _ in range(3)]
    assert comparison_next_for(reviewer=judge, project=project) is None
    assert sorted(str(group_of.get(pk, "loose")) for pk in given) == ["0", "1", "loose"]

    first = comparison_next_for(reviewer=skipper, project=project)
    assignment_skip(reviewer=skipper, assignment_id=first.pk)
    rest = [_judge(skipper, project).comparison_id for _ in range(2)]
    assert comparison_next_for(reviewer=skipper, project=project) is None
    assert group_of[first.comparison_id] not in [group_of.get(pk) for pk in rest]

    # Given back for another project (the general path claims next), then asked again.
    held = comparison_next_for(reviewer=wanderer, project=project)
    comparison_next_for(reviewer=wanderer, project=other_project)
    again = comparison_next_for(reviewer=wanderer, project=project)
    assert again.comparison_id == held.comparison_id or group_of.get(again.comparison_id) != group_of.get(held.comparison_id)

    # Expired, then asked again with no hold left (PostgreSQL's one-statement claim).
    held = comparison_next_for(reviewer=sleeper, project=project)
    later = timezone.now() + timedelta(seconds=project.hold_timeout_s + 1)
    assignment_service.holds_release_expired(now=later)
    seen = [held.comparison_id]
    while (assignment := comparison_next_for(reviewer=sleeper, project=project, now=later)) is not None:
        judgment_record(reviewer=sleeper, assignment_id=assignment.pk, verdict=Verdict("tie"), now=later)
        seen.append(assignment.comparison_id)
    grouped = [group_of[pk] for pk in set(seen) if pk in group_of]
    assert len(grouped) == len(set(grouped)) == 2


def test_the_database_refuses_a_reviewer_a_second_comparison_of_a_group(django_user_model, project):
    """Enforced in the claim itself: should two claims race past the check, the index refuses."""
    from django.db import IntegrityError, transaction

    ((before, base),) = _evaluation_like(project, groups=1)
    (user,) = make_reviewers(django_user_model, project, 1)
    held = comparison_next_for(reviewer=user, project=project)
    other = base if held.comparison_id == before.pk else before
    judgment_record(reviewer=user, assignment_id=held.pk, verdict=Verdict("left"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            comparison=other, reviewer=user, left_is_a=True, issued_at=timezone.now(),
            expires_at=timezone.now(), group_key=other.group_key,
        )
    assert comparison_next_for(reviewer=user, project=project) is None


def test_progress_counts_a_group_as_one_comparison(django_user_model, project):
    from prefs.selectors import reviewer_progress

    _evaluation_like(project, groups=2)
    make_comparisons(project, 1, prefix="loose")
    (user,) = make_reviewers(django_user_model, project, 1)
    assert reviewer_progress(reviewer=user, project=project)["remaining"] == 3
    for done in range(1, 4):
        _judge(user, project)
        assert reviewer_progress(reviewer=user, project=project)["remaining"] == 3 - done
    assert comparison_next_for(reviewer=user, project=project) is None
