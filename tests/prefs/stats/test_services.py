"""The database side: judgments read from a real project and fed to the statistics."""

from __future__ import annotations

import random

import pytest

from prefs.models import Judgment
from prefs.services.comparisons import CandidateSpec, comparison_create, prompt_get_or_create
from prefs.services.stats import (
    flagged_reviewer_ids,
    project_leaderboard,
    project_stats,
    reviewer_gold_accuracy,
    verdicts_from,
)
from prefs.stats.flags import POSITION_BIAS, TOO_FAST, FlagThresholds
from tuning.models import Adapter, BaseModel

pytestmark = pytest.mark.django_db


def _comparison(project, k: int, *, source_a="human", source_b="imported", gold="", **kw):
    prompt = prompt_get_or_create(
        project=project, messages=[{"role": "user", "content": f"Question {k}?"}]
    )
    return comparison_create(
        project=project,
        prompt=prompt,
        a=CandidateSpec(text=f"A short answer {k}.", source=source_a, **kw.get("a", {})),
        b=CandidateSpec(
            text=f"A much longer answer to question {k}.", source=source_b, **kw.get("b", {})
        ),
        gold_choice=gold,
    )


def _judge(comparison, reviewer, *, choice: str, left_is_a: bool, ms: int = 12000) -> Judgment:
    return Judgment.objects.create(
        comparison=comparison,
        reviewer=reviewer,
        choice=choice,
        left_is_a=left_is_a,
        ms_on_task=ms,
    )


@pytest.fixture
def simulated_project(project, django_user_model):
    """Three careful reviewers, one who always picks the left side, one who answers in
    300 ms; 40 comparisons, every one judged by all five."""
    rng = random.Random(1)
    people = {
        name: django_user_model.objects.create_user(name, password="pw")
        for name in ("cara", "cleo", "cyd", "lefty", "hasty")
    }
    project.reviewers.add(*people.values())
    for k in range(40):
        comparison = _comparison(project, k)
        truth = "A" if rng.random() < 0.5 else "B"
        for name, user in people.items():
            left_is_a = rng.random() < 0.5
            if name == "lefty":
                choice = "A" if left_is_a else "B"
            else:
                choice = truth if rng.random() < 0.9 else ("B" if truth == "A" else "A")
            ms = 300 if name == "hasty" else rng.randint(5000, 40000)
            _judge(comparison, user, choice=choice, left_is_a=left_is_a, ms=ms)
    return project, people


def test_the_left_picker_and_the_300_ms_reviewer_are_flagged(simulated_project):
    project, people = simulated_project
    assert flagged_reviewer_ids(project) == {people["lefty"].pk, people["hasty"].pk}
    assert flagged_reviewer_ids(project, FlagThresholds(), codes=[TOO_FAST]) == {people["hasty"].pk}
    # A more lenient speed threshold lets the quick reviewer through.
    assert flagged_reviewer_ids(project, FlagThresholds(min_median_ms=250)) == {people["lefty"].pk}


def test_project_stats_show_agreement_bias_and_flags_by_name(simulated_project):
    project, people = simulated_project
    stats = project_stats(project=project)
    assert stats["judgments"] == 200
    assert stats["comparisons_judged"] == 40
    assert stats["agreement"]["units"] == 40
    assert 0.3 < stats["agreement"]["krippendorff_alpha"] < 0.9
    # 10 pairs of reviewers, each sharing all 40 comparisons.
    assert len(stats["agreement"]["pairs"]) == 10
    rows = {row["username"]: row for row in stats["reviewers"]}
    assert {flag["code"] for flag in rows["lefty"]["flags"]} >= {POSITION_BIAS}
    assert [flag["code"] for flag in rows["hasty"]["flags"]] == [TOO_FAST]
    assert rows["cara"]["flags"] == []
    assert sum(day["judgments"] for day in stats["throughput"]) == 200


def test_other_projects_judgments_do_not_leak_in(simulated_project, other_project, outsider):
    project, _ = simulated_project
    comparison = _comparison(other_project, 99)
    _judge(comparison, outsider, choice="A", left_is_a=True, ms=100)
    stats = project_stats(project=project)
    assert outsider.pk not in {row["reviewer_id"] for row in stats["reviewers"]}
    assert stats["judgments"] == 200


def test_gold_accuracy_follows_the_admins_gold_choice(project, reviewer, django_user_model):
    second = django_user_model.objects.create_user("sam", password="pw")
    project.reviewers.add(second)
    for k in range(4):
        gold = _comparison(project, k, gold="A")
        _judge(gold, reviewer, choice="A" if k < 3 else "tie", left_is_a=True)
        _judge(gold, second, choice="B", left_is_a=False)
    plain = _comparison(project, 10)
    _judge(plain, reviewer, choice="B", left_is_a=True)
    Judgment.objects.create(comparison=gold, choice="B", imported=True)

    accuracy = reviewer_gold_accuracy(project=project)
    assert set(accuracy) == {reviewer.pk, second.pk}
    assert (accuracy[reviewer.pk]["n"], accuracy[reviewer.pk]["correct"]) == (4, 3)
    assert accuracy[reviewer.pk]["accuracy"] == pytest.approx(0.75)
    assert accuracy[second.pk]["accuracy"] == 0.0


def test_ten_wrong_gold_answers_flag_a_reviewer(project, reviewer):
    for k in range(10):
        _judge(_comparison(project, k, gold="A"), reviewer, choice="B", left_is_a=k % 2 == 0)
    assert flagged_reviewer_ids(project) == {reviewer.pk}
    assert project_stats(project=project)["reviewers"][0]["gold"]["accuracy"] == 0.0


def test_verdicts_carry_lengths_sources_and_gold(project, reviewer):
    comparison = _comparison(project, 1, gold="B")
    _judge(comparison, reviewer, choice="B", left_is_a=False, ms=4321)
    (verdict,) = verdicts_from(Judgment.objects.all())
    assert verdict.len_a == len("A short answer 1.")
    assert verdict.len_b == len("A much longer answer to question 1.")
    assert (verdict.source_a, verdict.source_b) == ("human", "imported")
    assert verdict.gold_choice == "B"
    assert verdict.picked_left is True
    assert verdict.ms_on_task == 4321


def test_leaderboard_names_adapters_and_ranks_the_better_one_first(project, reviewer):
    base = BaseModel.objects.create(name="tiny", source="tiny")
    old = Adapter.objects.create(base_model=base, project=project, name="dpo-1")
    new = Adapter.objects.create(base_model=base, project=project, name="dpo-2", parent=old)
    rng = random.Random(0)
    for k in range(60):
        comparison = _comparison(
            project,
            k,
            source_a="sampled",
            source_b="sampled",
            a={"adapter_id": new.pk},
            b={"adapter_id": old.pk},
        )
        choice = "A" if rng.random() < 0.75 else rng.choice(["B", "tie"])
        _judge(comparison, reviewer, choice=choice, left_is_a=rng.random() < 0.5)
    board = project_leaderboard(project=project, resamples=1000, seed=0)
    assert [row["source"] for row in board["sources"]] == ["dpo-2", "dpo-1"]
    top = board["sources"][0]
    assert top["low"] > 0 and top["games"] == 60
    assert board["judgments"] == 60
    assert board["matrix"]["sources"] == ["dpo-2", "dpo-1"]
    assert board["matrix"]["rates"][0][1] > 0.5


def test_leaderboard_can_leave_imported_labels_out(project, reviewer):
    comparison = _comparison(project, 1, source_a="model-x", source_b="model-y")
    Judgment.objects.create(comparison=comparison, choice="A", imported=True)
    assert project_leaderboard(project=project, resamples=10)["judgments"] == 1
    assert (
        project_leaderboard(project=project, resamples=10, include_imported=False)["judgments"] == 0
    )


def _freeze(project, **rule):
    from prefs.services.snapshots import FreezeRule, preference_set_freeze

    return preference_set_freeze(project=project, rule=FreezeRule(**rule))


def test_excluding_flagged_reviewers_changes_the_sets_pairs(simulated_project):
    from prefs.models import PreferencePair

    project, people = simulated_project
    flagged = {people["lefty"].pk, people["hasty"].pk}
    everyone = _freeze(project)
    careful_only = _freeze(project, exclude_flagged=True)
    assert careful_only.counts["flagged_reviewers"] == sorted(flagged)
    assert careful_only.counts["judgments_excluded"]["flagged"] == 80

    flagged_judgments = set(
        Judgment.objects.filter(reviewer_id__in=flagged).values_list("id", flat=True)
    )
    kept = PreferencePair.objects.filter(preference_set=careful_only)
    assert all(not flagged_judgments & set(p.judgment_ids) for p in kept)
    assert all(p.votes == 3 for p in kept)
    assert {p.votes for p in PreferencePair.objects.filter(preference_set=everyone)} == {5}
    # Dropping the left-picker's and the hasty reviewer's votes changes some outcomes.
    diff = careful_only.diff
    assert diff["previous"] == everyone.pk
    assert diff["added"] + diff["removed"] + diff["flipped"] > 0


def test_set_statistics_read_exactly_the_judgments_behind_its_pairs(simulated_project):
    from prefs.models import PreferencePair
    from prefs.services.stats import preference_set_judgments, preference_set_stats

    project, people = simulated_project
    frozen = _freeze(project, exclude_flagged=True, min_agreement=1.0)
    lineage = {
        judgment_id
        for pair in PreferencePair.objects.filter(preference_set=frozen)
        for judgment_id in pair.judgment_ids
    }
    assert lineage
    behind = set(preference_set_judgments(preference_set=frozen).values_list("id", flat=True))
    assert behind == lineage
    # A later judgment does not change what the version stands on.
    late = _comparison(project, 500)
    _judge(late, people["cara"], choice="A", left_is_a=True)
    stats = preference_set_stats(preference_set=frozen)
    assert stats["judgments"] == len(lineage)
    assert stats["version"] == frozen.version
    # Only unanimous comparisons were kept, so the careful reviewers agree perfectly there.
    assert stats["agreement"]["krippendorff_alpha"] == pytest.approx(1.0)
    assert {row["username"] for row in stats["reviewers"]} == {"cara", "cleo", "cyd"}
