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


# -- length-controlled win rate ----------------------------------------------------------------


def _judged(judge, *, n=400, after_longer=0.8, seed=0):
    """Verdicts of `judge(length_diff, rng)` on pairs where after is usually the longer answer."""
    from prefs.stats.winrate import length_controlled_win_rate

    rng = np.random.default_rng(seed)
    sign = np.where(rng.random(n) < after_longer, 1.0, -1.0)
    diffs = sign * rng.uniform(10, 300, n)
    outcomes = [judge(d, rng) for d in diffs]
    return outcomes, diffs, length_controlled_win_rate(outcomes, diffs)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_a_judge_that_only_likes_longer_answers_gets_a_high_raw_but_an_even_length_controlled_rate():
    outcomes, _, lc = _judged(lambda d, rng: float(rng.random() < _sigmoid(d / 40)))
    assert np.mean(outcomes) > 0.7
    assert abs(lc["rate"] - 0.5) < 0.1
    assert lc["low"] < 0.5 < lc["high"]
    assert lc["length_coef"] > 1


def test_a_judge_that_prefers_after_whatever_its_length_keeps_a_high_length_controlled_rate():
    outcomes, _, lc = _judged(lambda d, rng: float(rng.random() < 0.85))
    assert lc["rate"] == pytest.approx(np.mean(outcomes), abs=0.05)
    assert lc["rate"] > 0.8 and lc["low"] > 0.7


def test_a_shorter_after_that_still_wins_has_a_length_controlled_rate_above_its_raw_rate():
    # Reviewers like longer answers, yet prefer after although it is mostly the shorter one.
    outcomes, _, lc = _judged(lambda d, rng: float(rng.random() < _sigmoid(1.0 + d / 100)), after_longer=0.2)
    assert lc["rate"] > np.mean(outcomes) + 0.05


def test_ties_count_as_half_a_win_and_half_a_loss():
    from prefs.stats.winrate import length_controlled_win_rate

    lc = length_controlled_win_rate([0.5] * 10, [0.0] * 10)
    assert lc["rate"] == pytest.approx(0.5) and lc["n"] == 10
    same = length_controlled_win_rate([1, 0.5, 0, 1], [5, 0, -5, 3])
    split = length_controlled_win_rate([1, 1, 0, 0, 1], [5, 0, 0, -5, 3])
    # One tie weighs as half a win and half a loss; only the number of verdicts differs.
    assert same["rate"] == pytest.approx(split["rate"], abs=0.05)


def test_the_interval_resamples_whole_pairs_and_is_reproducible():
    from prefs.stats.winrate import length_controlled_win_rate

    # Ten pairs, each judged alike by its two reviewers.
    per_pair = [1, 0, 1, 1, 0.5, 1, 0, 1, 1, 0]
    outcomes = [o for o in per_pair for _ in range(2)]
    diffs = [d for d in (3, -2, 5, 0, 1, -4, 2, 6, -1, 0) for _ in range(2)]
    by_verdict = length_controlled_win_rate(outcomes, diffs)
    by_pair = length_controlled_win_rate(outcomes, diffs, groups=[i // 2 for i in range(20)])
    assert by_verdict == length_controlled_win_rate(outcomes, diffs)
    assert by_pair["rate"] == by_verdict["rate"]
    # Two verdicts of one pair move together: fewer independent draws, a wider interval.
    assert by_pair["high"] - by_pair["low"] > by_verdict["high"] - by_verdict["low"]
    assert 0.0 <= by_pair["low"] <= by_pair["rate"] <= by_pair["high"] <= 1.0


def test_no_verdicts_give_no_rate_and_every_rate_is_possible():
    from prefs.stats.winrate import length_controlled_win_rate

    assert length_controlled_win_rate([], []) == {"rate": None, "low": 0.0, "high": 1.0, "n": 0, "length_coef": None}
    everything = length_controlled_win_rate([1, 1, 1], [10, -10, 0])
    assert everything["rate"] > 0.95
    with pytest.raises(ValueError, match="outcomes must be"):
        length_controlled_win_rate([2], [0])
