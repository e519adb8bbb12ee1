"""A win rate with a 95% interval that behaves at small n and at 0% or 100%.

Ties count as half a win. The interval is Wilson's score interval computed on the tie-halved
counts (successes = wins + ties / 2 out of n = wins + losses + ties). Wilson's interval never
leaves [0, 1], is not degenerate at 0/n or n/n (unlike the normal approximation), and keeps
close to nominal coverage from a handful of trials up. Halving ties lowers the variance of each
trial (a tie always scores exactly 0.5), so treating the halved count as binomial errs on the
wide, conservative side.
"""

from __future__ import annotations

import math

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
