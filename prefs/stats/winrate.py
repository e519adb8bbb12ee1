"""A win rate with a 95% interval that behaves at small n and at 0% or 100%.

Ties count as half a win. The interval is Wilson's score interval computed on the tie-halved
counts (successes = wins + ties / 2 out of n = wins + losses + ties). Wilson's interval never
leaves [0, 1], is not degenerate at 0/n or n/n (unlike the normal approximation), and keeps
close to nominal coverage from a handful of trials up. Halving ties lowers the variance of each
trial (a tie always scores exactly 0.5), so treating the halved count as binomial errs on the
wide, conservative side.

``length_controlled_win_rate`` asks the same question with the answers' lengths held equal.
"""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95%: the standard normal quantile at 0.975.
Z_95 = 1.959963984540054


def wilson_interval(successes: float, n: float, *, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a proportion; (0, 1) when there are no trials."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = z * math.sqrt(max(p * (1.0 - p) / n + z2 / (4.0 * n * n), 0.0)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(*, wins: int, losses: int, ties: int) -> dict:
    """Share of wins (ties as half) with a 95% Wilson interval.

    Returns {"rate", "low", "high", "n", "wins", "losses", "ties"}; with no trials at all the
    rate is None and the interval is the whole of [0, 1].
    """
    for name, value in (("wins", wins), ("losses", losses), ("ties", ties)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"win_rate: {name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"win_rate: {name} must be >= 0, got {value}")
    n = wins + losses + ties
    successes = wins + ties / 2.0
    low, high = wilson_interval(successes, n)
    return {
        "rate": successes / n if n else None,
        "low": low,
        "high": high,
        "n": n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
    }


# Bootstrap resamples of the length-controlled win rate's interval, and the weak ridge that keeps
# the logistic fit finite when one side wins every verdict (a prior worth ~0.01 of one verdict).
LC_BOOTSTRAP = 1000
LC_RIDGE = 0.01
_NEWTON_STEPS = 50


def _logistic_fits(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted, ridge-penalised logistic regressions of y on [1, x], one per row -> (rows, 2).

    y, x, w are (rows, n); y may be fractional (0.5 for a tie: the same likelihood as a half win
    plus a half loss, AlpacaEval's weighting). Newton's method, vectorised over the rows.
    """
    beta = np.zeros((y.shape[0], 2))
    ridge = LC_RIDGE * np.eye(2)
    for _ in range(_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(beta[:, :1] + beta[:, 1:] * x)))
        residual = w * (y - p)
        gradient = np.stack([residual.sum(1), (residual * x).sum(1)], axis=1) - LC_RIDGE * beta
        curvature = w * p * (1.0 - p)
        hessian = np.empty((y.shape[0], 2, 2))
        hessian[:, 0, 0] = curvature.sum(1)
        hessian[:, 0, 1] = hessian[:, 1, 0] = (curvature * x).sum(1)
        hessian[:, 1, 1] = (curvature * x * x).sum(1)
        step = np.linalg.solve(hessian + ridge, gradient[:, :, None])[:, :, 0]
        beta += step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def length_controlled_win_rate(
    outcomes, length_diffs, *, groups=None, resamples: int = LC_BOOTSTRAP, seed: int = 0
) -> dict:
    """The win rate had both answers been the same length, with a 95% bootstrap interval.

    As AlpacaEval 2's length-controlled win rate: a logistic regression of each verdict (1 win,
    0 loss, 0.5 a tie, i.e. half a win and half a loss) on tanh(length difference / its standard
    deviation), read at a length difference of 0: LC = sigmoid(intercept). A judge that only
    likes longer answers gets a raw win rate far from 0.5 but an LC near 0.5; a judge that likes
    one side whatever its length keeps both high. ``length_diffs`` are after minus opponent (any
    unit: they are standardised). The interval is the 2.5-97.5 percentile of ``resamples``
    bootstrap fits drawn over ``groups`` (e.g. the comparison of each verdict, so the verdicts of
    one pair move together; default: each verdict alone), seeded, so a page shows stable figures.

    Returns {"rate", "low", "high", "n", "length_coef"}; rate None and interval (0, 1) with no
    verdicts.
    """
    y = np.asarray(list(outcomes), dtype=float)
    d = np.asarray(list(length_diffs), dtype=float)
    if y.shape != d.shape:
        raise ValueError(f"length_controlled_win_rate: {y.size} outcomes but {d.size} length differences")
    if ((y != 0.0) & (y != 0.5) & (y != 1.0)).any():
        raise ValueError("length_controlled_win_rate: outcomes must be 1 (win), 0 (loss) or 0.5 (tie)")
    if y.size == 0:
        return {"rate": None, "low": 0.0, "high": 1.0, "n": 0, "length_coef": None}
    spread = d.std()
    x = np.tanh(d / spread) if spread > 0 else np.zeros_like(d)
    beta = _logistic_fits(y[None, :], x[None, :], np.ones((1, y.size)))[0]
    rate = float(1.0 / (1.0 + math.exp(-beta[0])))

    labels = np.arange(y.size) if groups is None else np.unique(np.asarray(list(groups)), return_inverse=True)[1]
    if labels.shape != y.shape:
        raise ValueError("length_controlled_win_rate: groups must name one group per outcome")
    # Resample groups with replacement; a verdict's weight is how often its group was drawn.
    rng = np.random.default_rng(seed)
    n_groups = int(labels.max()) + 1
    draws = rng.integers(0, n_groups, size=(resamples, n_groups))
    counts = np.zeros((resamples, n_groups))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)
    weights = counts[:, labels]
    fits = _logistic_fits(np.broadcast_to(y, weights.shape), np.broadcast_to(x, weights.shape), weights)
    rates = 1.0 / (1.0 + np.exp(-fits[:, 0]))
    low, high = np.quantile(rates, [0.025, 0.975])
    return {"rate": rate, "low": float(low), "high": float(high), "n": int(y.size), "length_coef": float(beta[1])}
