"""Freezing preference sets: the rule, immutability, numbering, lineage, diff and rows."""

from __future__ import annotations

import pytest
from django.db.models import RestrictedError

from prefs.models import Comparison, Judgment, PreferencePair, PreferenceSet
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from prefs.services.exports import preference_set_rows
from prefs.services.snapshots import FreezeRule, PreferenceSetError, preference_set_freeze


@pytest.fixture
def people(django_user_model, project):
    users = [django_user_model.objects.create_user(f"judge{i}", password="pw-pw-pw-pw") for i in range(5)]
    project.reviewers.add(*users)
    return users


def make_pair(project, n: int, *, split: str = "train") -> Comparison:
    prompt = prompt_get_or_create(
        project=project, messages=[{"role": "user", "content": f"question {n}?"}], split=split
    )
    return comparison_create(
        project=project,
        prompt=prompt,
        a=CandidateSpec(f"answer {n} A", source="alpha"),
        b=CandidateSpec(f"answer {n} B", source="beta"),
        origin=Comparison.Origin.IMPORT,
    )


def vote(comparison, reviewer, choice: str, *, strength: int = 2, imported: bool = False, ms=None):
    return Judgment.objects.create(
        comparison=comparison,
        reviewer=None if imported else reviewer,
        imported=imported,
        choice=choice,
        strength=strength,
        ms_on_task=ms,
    )


def pairs_of(preference_set) -> list[tuple]:
    return list(
        PreferencePair.objects.filter(preference_set=preference_set)
        .order_by("id")
        .values_list("comparison_id", "kind", "chosen__text", "rejected__text", "weight")
    )


def test_majority_decides_each_pair_and_splits_are_dropped(project, people):
    clear, split, tie = (make_pair(project, i) for i in range(3))
    for reviewer, choice in zip(people, ["B", "B", "A"], strict=False):
        vote(clear, reviewer, choice, strength=3)
    vote(split, people[0], "A")
    vote(split, people[1], "B")
    vote(tie, people[0], "tie")

    frozen = preference_set_freeze(project=project)

    assert pairs_of(frozen) == [(clear.pk, "preferred", "answer 0 B", "answer 0 A", 1.0)]
    assert frozen.version == 1
    assert frozen.pair_count == 1
    assert frozen.counts["dropped"]["no_majority"] == 1
    assert frozen.counts["dropped"]["ties"] == 1
    assert len(frozen.sha256) == 64


def test_min_judgments_and_min_agreement_drop_thin_or_contested_pairs(project, people):
    lonely, contested, solid = (make_pair(project, i) for i in range(3))
    vote(lonely, people[0], "A")
    for reviewer, choice in zip(people, ["A", "A", "B"], strict=False):
        vote(contested, reviewer, choice)
    for reviewer in people[:3]:
        vote(solid, reviewer, "A")

    frozen = preference_set_freeze(project=project, rule=FreezeRule(min_judgments=2, min_agreement=0.9))

    assert [p[0] for p in pairs_of(frozen)] == [solid.pk]
    assert frozen.counts["dropped"] == {
        "too_few_judgments": 1,
        "no_majority": 0,
        "low_agreement": 1,
        "ties": 0,
        "both_bad": 0,
    }


def test_ties_and_both_bad_are_kept_only_on_request(project, people):
    tie, bad = make_pair(project, 0), make_pair(project, 1)
    vote(tie, people[0], "tie")
    vote(bad, people[0], "both_bad")

    kept = preference_set_freeze(
        project=project, rule=FreezeRule(include_ties=True, include_both_bad=True)
    )

    assert [p[1] for p in pairs_of(kept)] == ["tie", "both_bad"]
    rows = list(preference_set_rows(kept))
    # The tie goes out in both orders at half weight; both-bad gives no pairwise row.
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["weight"]) for r in rows] == [
        ("answer 0 A", "answer 0 B", pytest.approx(1 / 3)),
        ("answer 0 B", "answer 0 A", pytest.approx(1 / 3)),
    ]
    kto = list(preference_set_rows(kept, fmt="kto"))
    assert [(r["completion"][0]["content"], r["label"]) for r in kto] == [
        ("answer 1 A", False),
        ("answer 1 B", False),
    ]


def test_imported_labels_count_only_when_included(project, people):
    comparison = make_pair(project, 0)
    vote(comparison, None, "B", imported=True)

    with_imported = preference_set_freeze(project=project)
    without = preference_set_freeze(project=project, rule=FreezeRule(include_imported=False))

    assert with_imported.pair_count == 1
    assert without.pair_count == 0
    assert without.counts["judgments_excluded"]["imported"] == 1


def test_held_out_prompts_stay_out_of_a_training_set(project, people):
    train, heldout = make_pair(project, 0), make_pair(project, 1, split="heldout")
    vote(train, people[0], "A")
    vote(heldout, people[0], "A")

    assert [p[0] for p in pairs_of(preference_set_freeze(project=project))] == [train.pk]
    everything = preference_set_freeze(project=project, rule=FreezeRule(split="all"))
    assert everything.pair_count == 2


def test_strength_becomes_the_weight_unless_switched_off(project, people):
    comparison = make_pair(project, 0)
    vote(comparison, people[0], "A", strength=1)
    vote(comparison, people[1], "A", strength=2)

    weighted = preference_set_freeze(project=project)
    flat = preference_set_freeze(project=project, rule=FreezeRule(strength_as_weight=False))

    assert [r["weight"] for r in preference_set_rows(weighted)] == [0.5]
    assert [r["weight"] for r in preference_set_rows(flat)] == [1.0]


def test_later_judgments_never_change_a_frozen_version(project, people):
    comparison = make_pair(project, 0)
    vote(comparison, people[0], "A")
    frozen = preference_set_freeze(project=project)
    before = (pairs_of(frozen), frozen.sha256, frozen.counts)

    vote(comparison, people[1], "B")
    vote(comparison, people[2], "B")
    vote(make_pair(project, 1), people[0], "A")
    frozen.refresh_from_db()

    assert (pairs_of(frozen), frozen.sha256, frozen.counts) == before
    assert PreferencePair.objects.get(preference_set=frozen).judgment_ids == [
        Judgment.objects.filter(comparison=comparison).order_by("id").first().pk
    ]


def test_the_next_version_reports_pairs_added_removed_and_flipped(project, people):
    flips, stays, goes = (make_pair(project, i) for i in range(3))
    vote(flips, people[0], "A")
    vote(stays, people[0], "A")
    vote(goes, people[0], "A")
    first = preference_set_freeze(project=project)

    vote(flips, people[1], "B")
    vote(flips, people[2], "B")
    vote(goes, people[1], "B")  # now a 1-1 split: dropped
    vote(make_pair(project, 3), people[0], "B")
    second = preference_set_freeze(project=project)

    assert (first.version, second.version) == (1, 2)
    assert second.previous_id == first.pk
    assert second.diff == {
        "previous": first.pk,
        "previous_version": 1,
        "added": 1,
        "removed": 1,
        "flipped": 1,
    }
    assert first.diff == {}


def test_versions_are_numbered_per_project(project, other_project, people):
    vote(make_pair(project, 0), people[0], "A")
    assert [preference_set_freeze(project=project).version for _ in range(2)] == [1, 2]
    assert preference_set_freeze(project=other_project).version == 1


def test_same_content_gives_the_same_hash(project, people):
    vote(make_pair(project, 0), people[0], "A")
    one, two = preference_set_freeze(project=project), preference_set_freeze(project=project)
    other = preference_set_freeze(project=project, rule=FreezeRule(strength_as_weight=False))

    assert one.sha256 == two.sha256
    assert other.sha256 != one.sha256


def test_a_frozen_version_cannot_be_edited_nor_its_data_deleted(project, people):
    comparison = make_pair(project, 0)
    vote(comparison, people[0], "A")
    frozen = preference_set_freeze(project=project)

    frozen.rule = {"rule": "something else"}
    with pytest.raises(ValueError, match="immutable"):
        frozen.save()
    with pytest.raises(RestrictedError):
        comparison.delete()
    project.delete()
    assert not PreferenceSet.objects.exists()


def test_bad_rules_are_refused_with_each_field_named(project):
    with pytest.raises(PreferenceSetError) as caught:
        FreezeRule.from_data({"min_agreement": 2, "min_judgments": 0, "colour": "red"})
    assert {e["field"] for e in caught.value.errors} == {"colour"}
    with pytest.raises(PreferenceSetError) as caught:
        FreezeRule.from_data({"min_agreement": 2, "min_judgments": 0, "include_ties": "yes"})
    assert {e["field"] for e in caught.value.errors} == {"include_ties"}
    with pytest.raises(PreferenceSetError) as caught:
        FreezeRule.from_data({"min_agreement": 2, "min_judgments": 0})
    assert {e["field"] for e in caught.value.errors} == {"min_agreement", "min_judgments"}
    assert not PreferenceSet.objects.exists()


def test_flagged_reviewers_can_be_left_out(project, people):
    hasty, careful = people[0], people[1]
    comparisons = [make_pair(project, i) for i in range(6)]
    for comparison in comparisons:
        # 0.2 s per pair is far under the default 3 s median that flags a reviewer as too fast.
        vote(comparison, hasty, "B", ms=200)
    vote(comparisons[0], careful, "A", ms=20_000)
    vote(comparisons[1], careful, "A", ms=20_000)

    everyone = preference_set_freeze(project=project)
    trusted = preference_set_freeze(project=project, rule=FreezeRule(exclude_flagged=True))

    assert everyone.counts["dropped"]["no_majority"] == 2
    assert [p[2] for p in pairs_of(trusted)] == ["answer 0 A", "answer 1 A"]
    assert trusted.counts["flagged_reviewers"] == [hasty.pk]
    assert trusted.counts["judgments_excluded"]["flagged"] == 6
