"""Benchmark: Bradley–Terry with 1,000 bootstrap resamples over 100,000 judgments, 20 sources.

Target: under 5 s on the 2-core development machine. Simulates judgments with known strengths
(10% ties), then times the whole path a leaderboard takes: aggregate the outcomes, fit, and
bootstrap. For scale it also times the dashboard's numbers (agreement, bias, reviewer table)
over the same number of verdicts from 50 reviewers, three per comparison. Last stdout line:
JSON with `seconds` (the Bradley–Terry figure) and the details.

    python benchmarks/stats.py [--judgments 100000] [--resamples 1000]
    python benchmarks/stats.py --smoke     # 2,000 judgments, 20 resamples: does it still run?
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.special import expit

from prefs.stats.ranking import bradley_terry, pair_counts, win_rate_matrix
from prefs.stats.records import Verdict
from prefs.stats.summary import project_summary

JUDGMENTS = 100_000
SOURCES = 20
RESAMPLES = 1_000
SEED = 0
TIE_SHARE = 0.1
TARGET_S = 5.0
REVIEWERS = 50


def simulate(rng: np.random.Generator, judgments: int) -> tuple[list[tuple[str, str, float]], np.ndarray]:
    truth = np.linspace(-1.5, 1.5, SOURCES)
    names = [f"source-{k:02d}" for k in range(SOURCES)]
    a = rng.integers(0, SOURCES, size=judgments)
    # A different second source for every judgment: shift by 1..K-1.
    b = (a + rng.integers(1, SOURCES, size=judgments)) % SOURCES
    won = rng.random(judgments) < expit(truth[a] - truth[b])
    tied = rng.random(judgments) < TIE_SHARE
    score = np.where(tied, 0.5, won.astype(float))
    outcomes = [(names[i], names[j], float(s)) for i, j, s in zip(a, b, score, strict=True)]
    return outcomes, truth


def simulate_verdicts(rng: np.random.Generator, judgments: int) -> list[Verdict]:
    """Three reviewers per comparison, 80% following the truth, random sides and lengths."""
    verdicts: list[Verdict] = []
    comparison = 0
    while len(verdicts) < judgments:
        truth = "A" if rng.random() < 0.5 else "B"
        for reviewer in rng.choice(REVIEWERS, size=3, replace=False):
            other = "B" if truth == "A" else "A"
            verdicts.append(
                Verdict(
                    comparison_id=comparison,
                    reviewer_id=int(reviewer),
                    choice=truth if rng.random() < 0.8 else other,
                    left_is_a=bool(rng.random() < 0.5),
                    ms_on_task=int(rng.integers(2_000, 60_000)),
                    len_a=int(rng.integers(20, 2_000)),
                    len_b=int(rng.integers(20, 2_000)),
                    gold_choice=truth if comparison % 20 == 0 else "",
                )
            )
        comparison += 1
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--judgments", type=int, default=JUDGMENTS)
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs (the test suite does)")
    args = parser.parse_args()
    if args.smoke:
        # Options given on the command line still win.
        parser.set_defaults(judgments=2_000, resamples=20)
        args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    outcomes, truth = simulate(rng, args.judgments)

    start = time.perf_counter()
    counts = pair_counts(outcomes)
    aggregated = time.perf_counter()
    rows = bradley_terry(counts, resamples=args.resamples, seed=SEED)
    win_rate_matrix(counts)
    seconds = time.perf_counter() - start

    verdicts = simulate_verdicts(rng, args.judgments)
    summary_start = time.perf_counter()
    project_summary(verdicts)
    summary_seconds = time.perf_counter() - summary_start

    # Ties pull fitted log-strengths towards zero, so compare orders, not values.
    fitted = {row["source"]: row["score"] for row in rows}
    order = [fitted[f"source-{k:02d}"] for k in range(SOURCES)]
    rank_correlation = float(np.corrcoef(np.argsort(np.argsort(order)), np.arange(SOURCES))[0, 1])
    width = float(np.mean([row["high"] - row["low"] for row in rows]))
    print(f"aggregate {args.judgments:,} judgments: {aggregated - start:.3f} s")
    print(f"Bradley-Terry + {args.resamples:,} bootstrap resamples, {SOURCES} sources: {seconds:.3f} s")
    print(
        f"dashboard numbers over {len(verdicts):,} verdicts, {REVIEWERS} reviewers: {summary_seconds:.3f} s"
    )
    print(
        f"rank correlation with the true strengths {rank_correlation:.3f}; mean 95% width {width:.3f} nats"
    )
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "aggregate_seconds": round(aggregated - start, 3),
                "judgments": args.judgments,
                "sources": SOURCES,
                "resamples": args.resamples,
                "target_seconds": TARGET_S,
                "within_target": seconds < TARGET_S,
                "rank_correlation": round(rank_correlation, 4),
                "mean_interval_width_nats": round(width, 4),
                "summary_seconds": round(summary_seconds, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
