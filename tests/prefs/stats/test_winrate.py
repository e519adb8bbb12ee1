from __future__ import annotations

import numpy as np
import pytest

from prefs.stats.winrate import win_rate


def test_ties_count_as_half_a_win():
    result = win_rate(wins=3, losses=1, ties=2)
    assert result["rate"] == pytest.approx(4 / 6)
    assert result["n"] == 6
    assert (result["wins"], result["losses"], result["ties"]) == (3, 1, 2)


def test_interval_matches_newcombes_worked_example():
    # Worked example (Newcombe 1998, Table I, method 3): 81 successes out of 263 gives a
    # Wilson 95% interval of 0.2553 to 0.3662.
    result = win_rate(wins=81, losses=182, ties=0)
    assert result["low"] == pytest.approx(0.2553, abs=5e-5)
    assert result["high"] == pytest.approx(0.3662, abs=5e-5)


def test_all_wins_gives_a_proper_interval_below_one():
    result = win_rate(wins=5, losses=0, ties=0)
    assert result["rate"] == 1.0
    assert result["high"] == pytest.approx(1.0)
    # Wilson at 5/5: lower bound n / (n + z^2) = 0.5655.
    assert result["low"] == pytest.approx(5 / (5 + 1.959963984540054**2))
    assert 0.0 < result["low"] < 1.0


def test_all_losses_gives_a_proper_interval_above_zero():
    result = win_rate(wins=0, losses=7, ties=0)
    assert result["rate"] == 0.0
    assert result["low"] == pytest.approx(0.0)
    assert 0.0 < result["high"] < 0.5


def test_no_trials_gives_no_rate_and_the_whole_unit_interval():
    result = win_rate(wins=0, losses=0, ties=0)
    assert result["rate"] is None
    assert (result["low"], result["high"]) == (0.0, 1.0)


def test_interval_narrows_with_more_trials_and_contains_the_rate():
    small = win_rate(wins=6, losses=4, ties=0)
    large = win_rate(wins=600, losses=400, ties=0)
    assert small["low"] <= small["rate"] <= small["high"]
    assert large["low"] <= large["rate"] <= large["high"]
    assert (large["high"] - large["low"]) < (small["high"] - small["low"]) / 5


def test_negative_or_non_integer_counts_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="losses"):
        win_rate(wins=1, losses=-1, ties=0)
    with pytest.raises(TypeError, match="ties"):
        win_rate(wins=1, losses=1, ties=0.5)


def test_interval_covers_the_true_rate_about_95_percent_of_the_time():
    # 2,000 simulated matches of 30 trials at a true rate of 0.3 with 20% ties.
    rng = np.random.default_rng(0)
    p_win, p_tie = 0.2, 0.2
    true_rate = p_win + p_tie / 2
    draws = rng.multinomial(30, [p_win, 1 - p_win - p_tie, p_tie], size=2000)
    results = [win_rate(wins=int(w), losses=int(lo), ties=int(t)) for w, lo, t in draws]
    covered = sum(r["low"] <= true_rate <= r["high"] for r in results)
    # Binomial spread of the coverage itself at 2,000 runs is about 0.5 percentage points.
    assert 0.93 <= covered / 2000 <= 0.995
