from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from prefs.stats.ranking import (
    bradley_terry,
    bt_bootstrap,
    bt_fit,
    elo,
    pair_counts,
    win_rate_matrix,
)


def _simulate(strengths: np.ndarray, games_per_pair: int, rng) -> list[tuple[str, str, float]]:
    outcomes = []
    for i in range(len(strengths)):
        for j in range(i + 1, len(strengths)):
            p = expit(strengths[i] - strengths[j])
            for won in rng.random(games_per_pair) < p:
                outcomes.append((f"s{i}", f"s{j}", 1.0 if won else 0.0))
    return outcomes


def _direct_solution(scores: np.ndarray, ridge: float) -> np.ndarray:
    """Maximise the Bradley–Terry log-likelihood with a general-purpose optimiser."""
    size = len(scores)

    def negative_log_likelihood(free):
        s = np.concatenate([[0.0], free])
        diff = s[:, None] - s[None, :]
        return -(scores * log_expit(diff)).sum() + ridge / 2 * (s - s.mean()) @ (s - s.mean())

    result = minimize(negative_log_likelihood, np.zeros(size - 1), method="BFGS", tol=1e-12)
    s = np.concatenate([[0.0], result.x])
    return s - s.mean()


@pytest.mark.parametrize("ridge", [0.0, 0.01])
def test_bradley_terry_matches_a_direct_numerical_maximum_of_the_likelihood(ridge):
    rng = np.random.default_rng(11)
    outcomes = _simulate(np.array([0.0, 0.4, -0.7, 1.2, 0.1, -0.3]), 15, rng)
    # Some ties, counted as half a win for each side.
    outcomes += [("s0", "s3", 0.5)] * 4 + [("s2", "s5", 0.5)] * 3
    counts = pair_counts(outcomes)
    fitted = bt_fit(counts.scores, ridge=ridge)
    assert fitted.sum() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(fitted, _direct_solution(counts.scores, ridge), atol=1e-5)


def test_ties_count_as_half_a_win_each():
    counts = pair_counts([("x", "y", 0.5)] * 2 + [("x", "y", 1.0)])
    assert counts.scores.tolist() == [[0.0, 2.0], [1.0, 0.0]]
    # Two wins in three games: exp(s_x - s_y) = 2 at the maximum of the likelihood.
    fitted = bt_fit(counts.scores, ridge=0.0)
    assert fitted[0] - fitted[1] == pytest.approx(np.log(2.0), abs=1e-8)


def test_a_source_that_never_lost_gets_a_finite_top_score():
    outcomes = [("best", "mid", 1.0)] * 5 + [("mid", "low", 1.0)] * 3 + [("low", "mid", 1.0)]
    rows = bradley_terry(pair_counts(outcomes), resamples=200, seed=0)
    assert [row["source"] for row in rows] == ["best", "mid", "low"]
    assert all(np.isfinite([row["score"], row["low"], row["high"]]).all() for row in rows)


def test_scores_recover_known_strengths_with_many_judgments():
    rng = np.random.default_rng(5)
    truth = np.array([-1.0, -0.2, 0.3, 0.9])
    truth -= truth.mean()
    fitted = bt_fit(pair_counts(_simulate(truth, 2000, rng)).scores)
    np.testing.assert_allclose(fitted, truth, atol=0.08)


def test_rows_carry_counts_intervals_and_the_elo_scale():
    outcomes = [("a", "b", 1.0)] * 6 + [("b", "a", 1.0)] * 2 + [("a", "b", 0.5)] * 2
    rows = bradley_terry(pair_counts(outcomes), resamples=1000, seed=1)
    top = rows[0]
    assert top["source"] == "a"
    assert (top["games"], top["wins"], top["losses"], top["ties"]) == (10, 6, 2, 2)
    assert top["low"] <= top["score"] <= top["high"]
    assert top["rating"] == pytest.approx(1000 + 400 / np.log(10) * top["score"])


def test_the_bootstrap_is_reproducible_from_its_seed():
    counts = pair_counts(_simulate(np.array([0.0, 0.5, 1.0]), 30, np.random.default_rng(2)))
    first = bt_bootstrap(counts, resamples=300, seed=9)
    np.testing.assert_array_equal(first, bt_bootstrap(counts, resamples=300, seed=9))
    assert not np.array_equal(first, bt_bootstrap(counts, resamples=300, seed=10))


def test_multinomial_resampling_matches_resampling_the_judgments():
    # Independent check of the shortcut: resample judgment rows directly and compare the
    # spread of the fitted scores with the multinomial bootstrap's.
    rng = np.random.default_rng(4)
    outcomes = _simulate(np.array([0.0, 0.6, -0.4]), 60, rng)
    counts = pair_counts(outcomes)
    shortcut = bt_bootstrap(counts, resamples=2000, seed=0)
    direct = []
    for _ in range(2000):
        picks = rng.integers(0, len(outcomes), size=len(outcomes))
        direct.append(
            bt_fit(pair_counts([outcomes[p] for p in picks], sources=counts.sources).scores)
        )
    np.testing.assert_allclose(shortcut.std(axis=0), np.std(direct, axis=0), rtol=0.1)
    np.testing.assert_allclose(shortcut.mean(axis=0), np.mean(direct, axis=0), atol=0.03)


def test_95_percent_intervals_cover_the_true_strengths_about_95_percent_of_the_time():
    truth = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    rng = np.random.default_rng(2024)
    covered = total = 0
    for simulation in range(150):
        counts = pair_counts(_simulate(truth, 30, rng))
        rows = bradley_terry(counts, resamples=1000, seed=simulation)
        for row in rows:
            true_value = truth[int(row["source"][1:])]
            covered += row["low"] <= true_value <= row["high"]
            total += 1
    # 750 intervals; sampling spread of the coverage is about ±1.6 percentage points.
    assert 0.91 <= covered / total <= 0.99


def test_elo_moves_points_from_loser_to_winner_in_order():
    ratings = elo([("a", "b", 1.0)], k=32)
    assert ratings == {"a": 1016.0, "b": 984.0}
    ratings = elo([("a", "b", 1.0), ("a", "b", 0.5)], k=32)
    assert ratings["a"] < 1016.0
    assert ratings["a"] + ratings["b"] == pytest.approx(2000.0)


def test_win_rate_matrix_holds_shares_and_game_counts():
    counts = pair_counts(
        [("a", "b", 1.0)] * 3 + [("b", "a", 1.0)] + [("a", "b", 0.5)] * 2, sources=["c"]
    )
    matrix = win_rate_matrix(counts)
    assert matrix["sources"] == ["a", "b", "c"]
    assert matrix["rates"][0][1] == pytest.approx(4 / 6)
    assert matrix["rates"][1][0] == pytest.approx(2 / 6)
    assert matrix["rates"][0][2] is None
    assert matrix["games"][0][1] == 6


def test_bad_scores_are_refused_with_the_pair_named():
    with pytest.raises(ValueError, match="'a' vs 'b'"):
        pair_counts([("a", "b", 2)])
