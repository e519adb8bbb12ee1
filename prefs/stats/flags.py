"""The reviewer table: each reviewer's speed, gold accuracy, side bias and agreement, and the
flags an admin should look at (and may filter a preference set by).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass

from prefs.stats.agreement import majority_agreement
from prefs.stats.bias import length_bias, position_bias
from prefs.stats.gold import gold_accuracy
from prefs.stats.records import Verdict

TOO_FAST = "too_fast"
LOW_GOLD_ACCURACY = "low_gold_accuracy"
POSITION_BIAS = "position_bias"
LOW_AGREEMENT = "low_agreement"
FLAG_CODES = (TOO_FAST, LOW_GOLD_ACCURACY, POSITION_BIAS, LOW_AGREEMENT)


@dataclass(frozen=True)
class FlagThresholds:
    """When a reviewer is flagged. Each test needs a minimum of evidence before it fires."""

    # Median time on task under this many milliseconds: too quick to have read two answers.
    min_median_ms: int = 3000
    # Timed judgments needed before the median speaks.
    min_timed: int = 5
    # Gold accuracy under this share of gold comparisons answered as the admin did.
    min_gold_accuracy: float = 0.7
    # Gold verdicts needed before the accuracy speaks: with fewer, one slip moves it by > 10%.
    min_gold: int = 10
    # Strong position bias: at least this share of decisive verdicts on one side ...
    position_share: float = 0.7
    # ... and a two-sided exact binomial p-value under this level.
    position_p_value: float = 0.01
    # Decisive verdicts (A or B, side known) needed before the bias test speaks.
    min_decisive: int = 10
    # Agreement with the majority of the other reviewers under this share (a coin toss
    # between A and B agrees half of the time).
    min_majority_agreement: float = 0.6
    # Shared comparisons (with a clear majority among the others) needed before it speaks.
    min_agreement_units: int = 20

    def __post_init__(self) -> None:
        for name in (
            "min_gold_accuracy",
            "position_share",
            "position_p_value",
            "min_majority_agreement",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FlagThresholds.{name} must lie in [0, 1], got {value}")
        for name in (
            "min_median_ms",
            "min_timed",
            "min_gold",
            "min_decisive",
            "min_agreement_units",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"FlagThresholds.{name} must be >= 0, got {getattr(self, name)}")

    def as_dict(self) -> dict:
        return asdict(self)


def _flags(row: dict, thresholds: FlagThresholds) -> list[dict]:
    flags = []
    if row["timed"] >= max(thresholds.min_timed, 1) and row["median_ms"] < thresholds.min_median_ms:
        flags.append(
            {
                "code": TOO_FAST,
                "message": f"median {row['median_ms']:.0f} ms on task, under "
                f"{thresholds.min_median_ms} ms",
            }
        )
    gold = row["gold"]
    if (
        gold
        and gold["n"] >= max(thresholds.min_gold, 1)
        and (gold["accuracy"] < thresholds.min_gold_accuracy)
    ):
        flags.append(
            {
                "code": LOW_GOLD_ACCURACY,
                "message": f"{gold['correct']} of {gold['n']} gold comparisons right "
                f"({gold['accuracy']:.0%}), under {thresholds.min_gold_accuracy:.0%}",
            }
        )
    side = row["position"]
    if side["n"] >= max(thresholds.min_decisive, 1):
        lopsided = max(side["share"], 1.0 - side["share"])
        if lopsided >= thresholds.position_share and side["p_value"] < thresholds.position_p_value:
            which = "left" if side["share"] >= 0.5 else "right"
            flags.append(
                {
                    "code": POSITION_BIAS,
                    "message": f"{lopsided:.0%} of {side['n']} decisive verdicts for the "
                    f"{which} side (p = {side['p_value']:.2g})",
                }
            )
    agreement = row["agreement"]
    if agreement["n"] >= max(thresholds.min_agreement_units, 1) and (
        agreement["agreement"] < thresholds.min_majority_agreement
    ):
        flags.append(
            {
                "code": LOW_AGREEMENT,
                "message": f"agrees with the others' majority on {agreement['agreement']:.0%} "
                f"of {agreement['n']} comparisons, under "
                f"{thresholds.min_majority_agreement:.0%}",
            }
        )
    return flags


def reviewer_table(
    verdicts: Iterable[Verdict], thresholds: FlagThresholds | None = None
) -> list[dict]:
    """One row per reviewer with human verdicts, ordered by reviewer id.

    Row: {"reviewer_id", "judgments", "timed", "median_ms", "gold" (None without gold verdicts),
    "position", "length" (bias dicts), "agreement" ({"agreement", "n"}), "flags"
    ([{"code", "message"}])}.
    """
    thresholds = thresholds or FlagThresholds()
    human = [v for v in verdicts if v.reviewer_id is not None]
    by_reviewer: dict[Hashable, list[Verdict]] = defaultdict(list)
    for verdict in human:
        by_reviewer[verdict.reviewer_id].append(verdict)
    gold = gold_accuracy(human)
    agreement = majority_agreement((v.comparison_id, v.reviewer_id, v.choice) for v in human)
    rows = []
    for reviewer_id in sorted(by_reviewer):
        own = by_reviewer[reviewer_id]
        times = [v.ms_on_task for v in own if v.ms_on_task is not None]
        row = {
            "reviewer_id": reviewer_id,
            "judgments": len(own),
            "timed": len(times),
            "median_ms": float(statistics.median(times)) if times else None,
            "gold": gold.get(reviewer_id),
            "position": position_bias((v.left_is_a, v.choice) for v in own),
            "length": length_bias((v.len_a, v.len_b, v.choice) for v in own),
            "agreement": agreement.get(reviewer_id, {"agreement": None, "n": 0}),
        }
        row["flags"] = _flags(row, thresholds)
        rows.append(row)
    return rows


def flagged_ids(table: Iterable[dict], *, codes: Iterable[str] = FLAG_CODES) -> set:
    """Reviewer ids in a reviewer table carrying any of the given flags."""
    wanted = set(codes)
    unknown = wanted - set(FLAG_CODES)
    if unknown:
        raise ValueError(f"flagged_ids: unknown flag codes {sorted(unknown)}; known: {FLAG_CODES}")
    return {row["reviewer_id"] for row in table if any(f["code"] in wanted for f in row["flags"])}
