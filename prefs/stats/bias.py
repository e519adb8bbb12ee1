"""Position and length bias: does a verdict follow the screen side or the longer text?

Only decisive verdicts (A or B) count; ties and "both bad" say nothing about a side. Each
result carries the share with its 95% Wilson interval and a two-sided exact binomial test
against 50%.
"""

from __future__ import annotations

from collections.abc import Iterable

from scipy.stats import binomtest

from prefs.stats.records import A, B
from prefs.stats.winrate import wilson_interval


def _share(hits: int, n: int) -> dict:
    low, high = wilson_interval(hits, n)
    return {
        "share": hits / n if n else None,
        "low": low,
        "high": high,
        "p_value": float(binomtest(hits, n, 0.5).pvalue) if n else 1.0,
    }


def position_bias(verdicts: Iterable[tuple[bool | None, str]]) -> dict:
    """Share of decisive verdicts that went to the left side.

    `verdicts` holds (left_is_a, choice) pairs; those without a known side (imported labels,
    left_is_a None) are skipped. Returns {"n", "left", "right", "share", "low", "high",
    "p_value"}.
    """
    left = right = 0
    for left_is_a, choice in verdicts:
        if left_is_a is None or choice not in (A, B):
            continue
        if (choice == A) == left_is_a:
            left += 1
        else:
            right += 1
    return {"n": left + right, "left": left, "right": right, **_share(left, left + right)}


def length_bias(verdicts: Iterable[tuple[int, int, str]]) -> dict:
    """Share of decisive verdicts that went to the longer of the two responses.

    `verdicts` holds (len_a, len_b, choice) with lengths in characters; pairs of equal length
    are skipped. Returns {"n", "longer", "shorter", "share", "low", "high", "p_value"}.
    """
    longer = shorter = 0
    for len_a, len_b, choice in verdicts:
        if len_a == len_b or choice not in (A, B):
            continue
        if (choice == A) == (len_a > len_b):
            longer += 1
        else:
            shorter += 1
    return {
        "n": longer + shorter,
        "longer": longer,
        "shorter": shorter,
        **_share(longer, longer + shorter),
    }
