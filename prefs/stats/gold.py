"""Gold accuracy: how often each reviewer gave the known answer on gold comparisons."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from prefs.stats.records import Verdict
from prefs.stats.winrate import wilson_interval


def gold_accuracy(verdicts: Iterable[Verdict]) -> dict[Hashable, dict]:
    """Per reviewer: {"n", "correct", "accuracy", "low", "high"} over their gold verdicts.

    A verdict is correct when it equals the comparison's gold choice exactly (a tie on a gold
    "A" is wrong). Imported labels (no reviewer) and non-gold comparisons are ignored; a
    reviewer with no gold verdicts does not appear.
    """
    tally: dict[Hashable, list[int]] = {}
    for verdict in verdicts:
        if verdict.reviewer_id is None or not verdict.gold_choice:
            continue
        counts = tally.setdefault(verdict.reviewer_id, [0, 0])
        counts[0] += 1
        counts[1] += verdict.choice == verdict.gold_choice
    result = {}
    for reviewer, (n, correct) in tally.items():
        low, high = wilson_interval(correct, n)
        result[reviewer] = {
            "n": n,
            "correct": correct,
            "accuracy": correct / n,
            "low": low,
            "high": high,
        }
    return result
