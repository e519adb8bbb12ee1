"""Rankings of response sources: Bradley–Terry with bootstrap intervals, online Elo, and the
pairwise win-rate matrix.

An outcome is `(source_a, source_b, score_a)` with score_a 1 (a won), 0 (b won) or 0.5 (a tie,
counted as half a win for each side). Outcomes between a source and itself carry no
information and are dropped.

Bradley–Terry: P(i beats j) = 1 / (1 + exp(s_j - s_i)). The fit works on aggregated counts per
pair (W[i, j] = wins of i over j, ties as halves), so its cost does not grow with the number of
judgments, and runs Newton's method on many count matrices at once. Resampling judgments with
replacement is the same as drawing the cells of the count table (i won, j won, tie, for each
pair) from one multinomial with the observed shares, so a bootstrap resample is one multinomial
draw rather than a pass over every judgment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

Outcome = tuple[str, str, float]

# A Gaussian prior on each log-strength with precision 0.01 (standard deviation 10 nats):
# invisible next to the information of even a few judgments per pair, yet it keeps scores finite
# when a source never lost, where the pure maximum-likelihood estimate runs off to infinity.
DEFAULT_RIDGE = 0.01
# Elo points per nat of Bradley–Terry log-strength (400 / ln 10), and the rating of an average
# source, so both views read on the familiar chess scale.
ELO_PER_NAT = 400.0 / math.log(10.0)
RATING_BASE = 1000.0


@dataclass(frozen=True)
class PairCounts:
    """Aggregated outcomes: `wins[i, j]` decisive wins of i over j, `ties` symmetric."""

    sources: list[str]
    wins: np.ndarray
    ties: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """W[i, j]: wins of i over j with ties as half a win each."""
        return self.wins + self.ties / 2.0

    @property
    def games(self) -> np.ndarray:
        return self.wins + self.wins.T + self.ties


def pair_counts(outcomes: Iterable[Outcome], *, sources: Iterable[str] = ()) -> PairCounts:
    """Aggregate outcomes into counts per pair; `sources` adds ones that may have no games."""
    tally: dict[tuple[str, str, float], int] = {}
    names = set(sources)
    for a, b, score in outcomes:
        if score not in (0, 0.5, 1):
            raise ValueError(
                f"pair_counts: score for {a!r} vs {b!r} must be 0, 0.5 or 1, got {score!r}"
            )
        names.update((a, b))
        if a == b:
            continue
        key = (a, b, float(score))
        tally[key] = tally.get(key, 0) + 1
    ordered = sorted(names)
    index = {name: k for k, name in enumerate(ordered)}
    size = len(ordered)
    wins = np.zeros((size, size), dtype=np.int64)
    ties = np.zeros((size, size), dtype=np.int64)
    for (a, b, score), count in tally.items():
        i, j = index[a], index[b]
        if score == 1.0:
            wins[i, j] += count
        elif score == 0.0:
            wins[j, i] += count
        else:
            ties[i, j] += count
            ties[j, i] += count
    return PairCounts(ordered, wins, ties)


def bt_fit(
    scores: np.ndarray,
    *,
    ridge: float = DEFAULT_RIDGE,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray:
    """Bradley–Terry log-strengths (mean zero) from a K×K score matrix, or a stack of them.

    `scores[..., i, j]` is how many wins i scored against j (ties as halves). Maximises
    sum W_ij log σ(s_i - s_j) - ridge/2 · |s|² by Newton's method, all matrices at once.
    """
    single = scores.ndim == 2
    w = np.asarray(scores, dtype=np.float64)
    if single:
        w = w[None]
    batch, size, _ = w.shape
    s = np.zeros((batch, size))
    if size < 2:
        return s[0] if single else s
    games = w + np.swapaxes(w, 1, 2)
    won = w.sum(axis=2)
    eye = np.eye(size)
    # The likelihood ignores a common shift of all scores; adding 1/K to every entry of the
    # (negated) Hessian pins that direction without changing the step elsewhere.
    pin = np.full((size, size), 1.0 / size)
    for _ in range(max_iter):
        p = expit(s[:, :, None] - s[:, None, :])
        gradient = won - (games * p).sum(axis=2) - ridge * s
        curvature = games * p * (1.0 - p)
        information = eye * (curvature.sum(axis=2) + ridge)[:, :, None] - curvature + pin
        step = np.linalg.solve(information, gradient[:, :, None])[:, :, 0]
        # Far from the optimum (a source that nearly never lost) a full step can overshoot;
        # capping its largest component at 2 nats keeps the direction and the ascent.
        largest = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(largest, 1e-300))
        s += step
        s -= s.mean(axis=1, keepdims=True)
        if float(largest.max()) < tol:
            break
    return s[0] if single else s


def bt_bootstrap(
    counts: PairCounts,
    *,
    resamples: int = 1000,
    seed: int = 0,
    ridge: float = DEFAULT_RIDGE,
) -> np.ndarray:
    """Bradley–Terry scores of `resamples` bootstrap resamples of the judgments: (B, K)."""
    size = len(counts.sources)
    upper_i, upper_j = np.triu_indices(size, k=1)
    # The cells of the count table: every ordered decisive pair, then every unordered tie pair.
    dec_i, dec_j = np.nonzero(counts.wins)
    tie_mask = counts.ties[upper_i, upper_j] > 0
    tie_i, tie_j = upper_i[tie_mask], upper_j[tie_mask]
    cells = np.concatenate([counts.wins[dec_i, dec_j], counts.ties[tie_i, tie_j]]).astype(
        np.float64
    )
    total = int(cells.sum())
    if total == 0:
        return np.zeros((resamples, size))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cells / total, size=resamples).astype(np.float64)
    decisive, tied = draws[:, : len(dec_i)], draws[:, len(dec_i) :]
    stack = np.zeros((resamples, size, size))
    stack[:, dec_i, dec_j] = decisive
    stack[:, tie_i, tie_j] += tied / 2.0
    stack[:, tie_j, tie_i] += tied / 2.0
    return bt_fit(stack, ridge=ridge)


def bradley_terry(
    counts: PairCounts,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    ridge: float = DEFAULT_RIDGE,
) -> list[dict]:
    """Scores with percentile bootstrap intervals, best first.

    Each row: {"source", "score", "low", "high" (log-strength, mean zero), "rating",
    "rating_low", "rating_high" (the same on the Elo scale around 1000), "games", "wins",
    "losses", "ties"}.
    """
    if resamples < 1:
        raise ValueError(f"bradley_terry: resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bradley_terry: confidence must lie in (0, 1), got {confidence}")
    point = bt_fit(counts.scores, ridge=ridge)
    boot = bt_bootstrap(counts, resamples=resamples, seed=seed, ridge=ridge)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    rows = []
    for k, source in enumerate(counts.sources):
        rows.append(
            {
                "source": source,
                "score": float(point[k]),
                "low": float(low[k]),
                "high": float(high[k]),
                "rating": RATING_BASE + ELO_PER_NAT * float(point[k]),
                "rating_low": RATING_BASE + ELO_PER_NAT * float(low[k]),
                "rating_high": RATING_BASE + ELO_PER_NAT * float(high[k]),
                "games": int(counts.games[k].sum()),
                "wins": int(counts.wins[k].sum()),
                "losses": int(counts.wins[:, k].sum()),
                "ties": int(counts.ties[k].sum()),
            }
        )
    rows.sort(key=lambda row: (-row["score"], row["source"]))
    return rows


def elo(
    outcomes: Iterable[Outcome], *, k: float = 16.0, initial: float = RATING_BASE
) -> dict[str, float]:
    """Online Elo ratings after playing the outcomes in the order given.

    Unlike Bradley–Terry this depends on the order (recent games weigh more); it is shown as
    a secondary view of how ratings moved, with k the points at stake per game.
    """
    ratings: dict[str, float] = {}
    for a, b, score in outcomes:
        ra = ratings.setdefault(a, initial)
        rb = ratings.setdefault(b, initial)
        if a == b:
            continue
        expected = 1.0 / (1.0 + 10.0 ** ((rb - ra) / 400.0))
        ratings[a] = ra + k * (score - expected)
        ratings[b] = rb - k * (score - expected)
    return ratings


def win_rate_matrix(counts: PairCounts) -> dict:
    """Row source's share of wins (ties as half) against the column source.

    Returns {"sources", "rates" (K×K, None where the pair never met), "games" (K×K)}.
    """
    games = counts.games
    scores = counts.scores
    rates = [
        [float(scores[i, j] / games[i, j]) if games[i, j] else None for j in range(len(games))]
        for i in range(len(games))
    ]
    return {"sources": list(counts.sources), "rates": rates, "games": games.tolist()}
