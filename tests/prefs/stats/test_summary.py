from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prefs.stats.records import Verdict
from prefs.stats.summary import leaderboard_summary, outcomes, project_summary, throughput


def test_throughput_counts_judgments_per_day_and_fills_empty_days():
    start = datetime(2025, 3, 1, 10, tzinfo=UTC)
    stamps = [start, start + timedelta(hours=1), start + timedelta(days=2)]
    assert throughput(stamps) == [
        {"date": "2025-03-01", "judgments": 2},
        {"date": "2025-03-02", "judgments": 0},
        {"date": "2025-03-03", "judgments": 1},
    ]
    assert throughput([]) == []


def test_throughput_keeps_only_the_latest_days():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    series = throughput([start, start + timedelta(days=200)], max_days=10)
    assert len(series) == 10
    assert series[-1] == {"date": "2025-07-20", "judgments": 1}


def test_both_bad_ranks_as_a_tie_and_unknown_sources_are_left_out():
    verdicts = [
        Verdict(comparison_id=1, reviewer_id=1, choice="both_bad", source_a="x", source_b="y"),
        Verdict(comparison_id=2, reviewer_id=1, choice="B", source_a="x", source_b="y"),
        Verdict(comparison_id=3, reviewer_id=1, choice="A", source_a="", source_b="y"),
    ]
    assert outcomes(verdicts) == [("x", "y", 0.5), ("x", "y", 0.0)]


def test_leaderboard_drops_same_source_comparisons_and_adds_elo():
    verdicts = [
        Verdict(comparison_id=k, reviewer_id=None, choice="A", source_a="new", source_b="old")
        for k in range(8)
    ] + [
        Verdict(comparison_id=9, reviewer_id=None, choice="A", source_a="old", source_b="new"),
        Verdict(comparison_id=10, reviewer_id=None, choice="A", source_a="old", source_b="old"),
    ]
    board = leaderboard_summary(verdicts, resamples=1000, seed=3)
    assert board["judgments"] == 9
    assert [row["source"] for row in board["sources"]] == ["new", "old"]
    assert board["sources"][0]["elo"] > 1000 > board["sources"][1]["elo"]
    assert board["matrix"]["sources"] == ["new", "old"]
    assert board["matrix"]["rates"][0][1] == pytest.approx(8 / 9)
    assert board["matrix"]["games"][1][0] == 9


def test_project_summary_keeps_imported_labels_out_of_reviewer_statistics():
    verdicts = [
        Verdict(comparison_id=1, reviewer_id=1, choice="A", left_is_a=True),
        Verdict(comparison_id=1, reviewer_id=2, choice="A", left_is_a=False),
        Verdict(comparison_id=1, reviewer_id=None, choice="B"),
    ]
    summary = project_summary(verdicts)
    assert summary["judgments"] == 2
    assert summary["imported_labels"] == 1
    assert summary["comparisons_judged"] == 1
    assert summary["agreement"]["units"] == 1
    assert [row["reviewer_id"] for row in summary["reviewers"]] == [1, 2]
    assert summary["position_bias"]["n"] == 2
    assert summary["choices"] == {"A": 2}
