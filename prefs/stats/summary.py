"""Whole-project numbers built from the topic modules: what the stats page and API show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from prefs.stats.agreement import (
    DEFAULT_MIN_OVERLAP,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    pairwise_cohen_kappa,
)
from prefs.stats.bias import length_bias, position_bias
from prefs.stats.flags import FlagThresholds, reviewer_table
from prefs.stats.ranking import (
    DEFAULT_RIDGE,
    bradley_terry,
    elo,
    pair_counts,
    win_rate_matrix,
)
from prefs.stats.records import BOTH_BAD, TIE, A, B, Verdict

# For a ranking, "both bad" says neither response is better than the other: a tie.
_SCORE = {A: 1.0, B: 0.0, TIE: 0.5, BOTH_BAD: 0.5}
# The throughput chart shows at most this many days, ending with the latest judgment.
THROUGHPUT_MAX_DAYS = 90


def throughput(
    timestamps: Iterable[datetime], *, max_days: int = THROUGHPUT_MAX_DAYS
) -> list[dict]:
    """Judgments per UTC day, with empty days filled in: [{"date": "YYYY-MM-DD", "judgments"}]."""
    days = Counter(
        (stamp.astimezone(UTC) if stamp.tzinfo else stamp).date() for stamp in timestamps
    )
    if not days:
        return []
    last = max(days)
    first = max(min(days), last - timedelta(days=max_days - 1))
    out = []
    day: date = first
    while day <= last:
        out.append({"date": day.isoformat(), "judgments": days.get(day, 0)})
        day += timedelta(days=1)
    return out


def agreement_summary(
    verdicts: Iterable[Verdict], *, min_overlap: int = DEFAULT_MIN_OVERLAP
) -> dict:
    """Agreement among human reviewers: {"fleiss_kappa", "krippendorff_alpha", "pairs",
    "units" (comparisons with two or more human verdicts)}."""
    ratings = [
        (v.comparison_id, v.reviewer_id, v.choice) for v in verdicts if v.reviewer_id is not None
    ]
    per_unit = Counter(unit for unit, _, _ in ratings)
    return {
        "fleiss_kappa": fleiss_kappa(ratings),
        "krippendorff_alpha": krippendorff_alpha_nominal(ratings),
        "pairs": pairwise_cohen_kappa(ratings, min_overlap=min_overlap),
        "min_overlap": min_overlap,
        "units": sum(1 for count in per_unit.values() if count >= 2),
    }


def project_summary(
    verdicts: Iterable[Verdict], *, thresholds: FlagThresholds | None = None
) -> dict:
    """Everything on the dashboard, from one list of verdicts (human and imported)."""
    thresholds = thresholds or FlagThresholds()
    verdicts = list(verdicts)
    human = [v for v in verdicts if v.reviewer_id is not None]
    return {
        "judgments": len(human),
        "imported_labels": len(verdicts) - len(human),
        "comparisons_judged": len({v.comparison_id for v in human}),
        "reviewers_active": len({v.reviewer_id for v in human}),
        "choices": dict(Counter(v.choice for v in human)),
        "agreement": agreement_summary(human),
        "position_bias": position_bias((v.left_is_a, v.choice) for v in human),
        "length_bias": length_bias((v.len_a, v.len_b, v.choice) for v in human),
        "reviewers": reviewer_table(human, thresholds),
        "throughput": throughput(v.created_at for v in human if v.created_at is not None),
        "thresholds": thresholds.as_dict(),
    }


def outcomes(verdicts: Iterable[Verdict]) -> list[tuple[str, str, float]]:
    """Ranking outcomes (source_a, source_b, score_a) in the order of the verdicts."""
    return [
        (v.source_a, v.source_b, _SCORE[v.choice])
        for v in verdicts
        if v.choice in _SCORE and v.source_a and v.source_b
    ]


def leaderboard_summary(
    verdicts: Iterable[Verdict],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    ridge: float = DEFAULT_RIDGE,
) -> dict:
    """Bradley–Terry rows (with online Elo beside them) and the pairwise win-rate matrix,
    both in ranking order, best first.

    Comparisons between two candidates of the same source say nothing about sources and are
    left out; `judgments` counts only those that were used.
    """
    played = [o for o in outcomes(verdicts) if o[0] != o[1]]
    counts = pair_counts(played)
    rows = bradley_terry(counts, resamples=resamples, seed=seed, confidence=confidence, ridge=ridge)
    online = elo(played)
    for row in rows:
        row["elo"] = online.get(row["source"])
    return {
        "judgments": len(played),
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "sources": rows,
        "matrix": _reorder(win_rate_matrix(counts), [row["source"] for row in rows]),
    }


def _reorder(matrix: dict, order: list[str]) -> dict:
    """The matrix with rows and columns in the given order (the ranking, best first)."""
    where = {name: k for k, name in enumerate(matrix["sources"])}
    index = [where[name] for name in order]
    return {
        "sources": list(order),
        "rates": [[matrix["rates"][i][j] for j in index] for i in index],
        "games": [[matrix["games"][i][j] for j in index] for i in index],
    }
