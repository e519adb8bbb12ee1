from __future__ import annotations

import numpy as np
import pytest

from prefs.stats.flags import (
    LOW_AGREEMENT,
    LOW_GOLD_ACCURACY,
    POSITION_BIAS,
    TOO_FAST,
    FlagThresholds,
    flagged_ids,
    reviewer_table,
)
from prefs.stats.gold import gold_accuracy
from prefs.stats.records import Verdict

CAREFUL, LEFTY, HASTY, RANDOM = 1, 2, 3, 4


def _simulated_project(seed: int = 0, comparisons: int = 200) -> list[Verdict]:
    """Six reviewers judge every comparison: three careful ones, one who always picks the
    left side, one who answers in about 300 ms, one who answers at random. Every fifth
    comparison is gold, with the true answer."""
    rng = np.random.default_rng(seed)
    reviewers = {
        CAREFUL: "careful",
        11: "careful",
        12: "careful",
        LEFTY: "lefty",
        HASTY: "hasty",
        RANDOM: "random",
    }
    verdicts = []
    for comparison in range(comparisons):
        truth = "A" if rng.random() < 0.5 else "B"
        gold = truth if comparison % 5 == 0 else ""
        for reviewer, kind in reviewers.items():
            left_is_a = bool(rng.random() < 0.5)
            if kind == "lefty":
                choice = "A" if left_is_a else "B"
            elif kind == "random":
                choice = "A" if rng.random() < 0.5 else "B"
            else:
                choice = truth if rng.random() < 0.9 else ("B" if truth == "A" else "A")
            ms = int(rng.normal(300, 40)) if kind == "hasty" else int(rng.uniform(6000, 30000))
            verdicts.append(
                Verdict(
                    comparison_id=comparison,
                    reviewer_id=reviewer,
                    choice=choice,
                    left_is_a=left_is_a,
                    ms_on_task=ms,
                    len_a=int(rng.integers(50, 500)),
                    len_b=int(rng.integers(50, 500)),
                    gold_choice=gold,
                )
            )
    return verdicts


def _codes(table: list[dict]) -> dict[int, set[str]]:
    return {row["reviewer_id"]: {flag["code"] for flag in row["flags"]} for row in table}


def test_the_left_picker_and_the_300_ms_reviewer_are_flagged_and_careful_ones_are_not():
    codes = _codes(reviewer_table(_simulated_project()))
    assert POSITION_BIAS in codes[LEFTY]
    assert codes[HASTY] == {TOO_FAST}
    for careful in (CAREFUL, 11, 12):
        assert codes[careful] == set()


def test_a_random_answerer_is_flagged_for_gold_accuracy_and_agreement():
    codes = _codes(reviewer_table(_simulated_project()))
    assert {LOW_GOLD_ACCURACY, LOW_AGREEMENT} <= codes[RANDOM]
    assert POSITION_BIAS not in codes[RANDOM]


def test_flagged_ids_selects_by_flag_code():
    table = reviewer_table(_simulated_project())
    assert {LEFTY, HASTY, RANDOM} <= flagged_ids(table)
    assert not {CAREFUL, 11, 12} & flagged_ids(table)
    assert flagged_ids(table, codes=[TOO_FAST]) == {HASTY}
    with pytest.raises(ValueError, match="unknown flag codes"):
        flagged_ids(table, codes=["sleepy"])


def test_thresholds_decide_the_flags():
    verdicts = _simulated_project()
    lenient = FlagThresholds(min_median_ms=200)
    assert HASTY not in flagged_ids(reviewer_table(verdicts, lenient), codes=[TOO_FAST])
    with pytest.raises(ValueError, match="position_share"):
        FlagThresholds(position_share=1.5)


def test_no_flag_without_enough_evidence():
    # Three quick, left-side verdicts: suspicious, but too few to say.
    verdicts = [
        Verdict(comparison_id=k, reviewer_id=7, choice="A", left_is_a=True, ms_on_task=200)
        for k in range(3)
    ]
    (row,) = reviewer_table(verdicts)
    assert row["flags"] == []
    assert row["median_ms"] == 200
    assert row["gold"] is None


def test_the_table_reports_what_the_flags_rest_on():
    table = {row["reviewer_id"]: row for row in reviewer_table(_simulated_project())}
    lefty = table[LEFTY]
    assert lefty["judgments"] == 200
    assert lefty["position"]["share"] == 1.0
    assert table[HASTY]["median_ms"] < 400
    assert table[CAREFUL]["gold"]["n"] == 40


def test_gold_accuracy_counts_exact_matches_with_the_gold_choice():
    verdicts = [
        Verdict(comparison_id=1, reviewer_id=5, choice="A", gold_choice="A"),
        Verdict(comparison_id=2, reviewer_id=5, choice="tie", gold_choice="A"),
        Verdict(comparison_id=3, reviewer_id=5, choice="B", gold_choice="B"),
        Verdict(comparison_id=4, reviewer_id=5, choice="B"),  # not gold
        Verdict(comparison_id=1, reviewer_id=None, choice="B", gold_choice="A"),  # imported
        Verdict(comparison_id=1, reviewer_id=6, choice="B", gold_choice="A"),
    ]
    result = gold_accuracy(verdicts)
    assert set(result) == {5, 6}
    assert (result[5]["n"], result[5]["correct"]) == (3, 2)
    assert result[5]["accuracy"] == pytest.approx(2 / 3)
    assert result[5]["low"] < 2 / 3 < result[5]["high"]
    assert result[6]["accuracy"] == 0.0
