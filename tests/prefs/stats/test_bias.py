from __future__ import annotations

import math

import pytest

from prefs.stats.bias import length_bias, position_bias


def test_a_reviewer_who_always_picks_left_shows_full_position_bias():
    # Sides drawn alternately, verdict always for whatever was on the left.
    verdicts = [(i % 2 == 0, "A" if i % 2 == 0 else "B") for i in range(20)]
    result = position_bias(verdicts)
    assert (result["n"], result["left"], result["right"]) == (20, 20, 0)
    assert result["share"] == 1.0
    # Exact two-sided binomial: 2 × 0.5^20.
    assert result["p_value"] == pytest.approx(2 * 0.5**20)


def test_position_bias_skips_ties_both_bad_and_unknown_sides():
    verdicts = [(True, "A"), (False, "A"), (True, "tie"), (False, "both_bad"), (None, "A")]
    result = position_bias(verdicts)
    assert (result["n"], result["left"], result["right"]) == (2, 1, 1)
    assert result["share"] == 0.5
    assert result["p_value"] == pytest.approx(1.0)


def test_exact_binomial_p_value_by_hand():
    # 8 left out of 10: P(X >= 8) + P(X <= 2) with X ~ Bin(10, 0.5) = 2 × 56 / 1024.
    verdicts = [(True, "A")] * 8 + [(True, "B")] * 2
    result = position_bias(verdicts)
    expected = 2 * sum(math.comb(10, k) for k in (8, 9, 10)) / 2**10
    assert result["p_value"] == pytest.approx(expected)
    assert result["low"] < 0.8 < result["high"]


def test_no_decisive_verdicts_gives_no_share_and_no_evidence():
    result = position_bias([(True, "tie")])
    assert result["n"] == 0
    assert result["share"] is None
    assert result["p_value"] == 1.0


def test_length_bias_counts_verdicts_for_the_longer_response():
    verdicts = [
        (100, 20, "A"),  # longer
        (20, 100, "B"),  # longer
        (20, 100, "A"),  # shorter
        (50, 50, "A"),  # equal: skipped
        (100, 20, "tie"),  # not decisive: skipped
    ]
    result = length_bias(verdicts)
    assert (result["n"], result["longer"], result["shorter"]) == (3, 2, 1)
    assert result["share"] == pytest.approx(2 / 3)
