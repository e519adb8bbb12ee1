from __future__ import annotations

import pytest

from prefs.models import Judgment
from prefs.services.gold import GoldError, comparison_set_gold, gold_comparisons
from prefs.services.stats import reviewer_gold_accuracy
from tests.factories import make_comparisons

pytestmark = pytest.mark.django_db


def test_marking_gold_makes_reviewers_answers_count_towards_gold_accuracy(project, reviewer):
    first, second = make_comparisons(project, 2)
    Judgment.objects.create(comparison=first, reviewer=reviewer, choice="A", left_is_a=True)
    Judgment.objects.create(comparison=second, reviewer=reviewer, choice="A", left_is_a=False)
    assert reviewer_gold_accuracy(project=project) == {}

    comparison_set_gold(project=project, comparison_id=first.pk, choice="A")
    comparison_set_gold(project=project, comparison_id=second.pk, choice="B")
    accuracy = reviewer_gold_accuracy(project=project)[reviewer.pk]
    assert (accuracy["n"], accuracy["correct"]) == (2, 1)

    listed = {c.pk: c for c in gold_comparisons(project=project)}
    assert (listed[first.pk].right_judgments, listed[first.pk].human_judgments) == (1, 1)
    assert (listed[second.pk].right_judgments, listed[second.pk].human_judgments) == (0, 1)


def test_clearing_gold_takes_the_comparison_out_of_gold_accuracy(project, reviewer):
    (comparison,) = make_comparisons(project, 1, gold_choice="A")
    Judgment.objects.create(comparison=comparison, reviewer=reviewer, choice="B", left_is_a=True)
    assert reviewer_gold_accuracy(project=project)[reviewer.pk]["accuracy"] == 0.0
    comparison_set_gold(project=project, comparison_id=comparison.pk, choice="")
    assert reviewer_gold_accuracy(project=project) == {}
    assert list(gold_comparisons(project=project)) == []
    assert len(gold_comparisons(project=project, only_gold=False)) == 1


def test_a_bad_choice_or_another_projects_comparison_changes_nothing(project, other_project):
    (mine,) = make_comparisons(project, 1)
    (theirs,) = make_comparisons(other_project, 1)
    with pytest.raises(GoldError, match="gold choice must be one of"):
        comparison_set_gold(project=project, comparison_id=mine.pk, choice="left")
    with pytest.raises(GoldError, match="not in project"):
        comparison_set_gold(project=project, comparison_id=theirs.pk, choice="A")
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.gold_choice, theirs.gold_choice) == ("", "")
