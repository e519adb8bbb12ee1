"""Inter-rater agreement over nominal labels: Cohen's κ, Fleiss' κ, Krippendorff's α, and
each rater's agreement with the majority of the others.

Input everywhere is an iterable of `(unit, rater, label)` triples: a unit is what was judged (a
comparison id), a rater who judged it, a label the verdict (any hashable). A rater who labels
the same unit twice keeps the last label. Results that are undefined (no variation in the data,
no overlap) are None rather than NaN, so they travel as JSON null.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable

import numpy as np

Rating = tuple[Hashable, Hashable, Hashable]

# Pairs of raters need this many shared units before their κ is worth showing.
DEFAULT_MIN_OVERLAP = 10


def _by_unit(ratings: Iterable[Rating]) -> dict[Hashable, dict[Hashable, Hashable]]:
    units: dict[Hashable, dict[Hashable, Hashable]] = defaultdict(dict)
    for unit, rater, label in ratings:
        units[unit][rater] = label
    return units


def cohen_kappa(labels_a: list[Hashable], labels_b: list[Hashable]) -> float | None:
    """Cohen's κ between two raters' labels of the same units, in the same order."""
    if len(labels_a) != len(labels_b):
        raise ValueError(
            f"cohen_kappa: the two label lists differ in length ({len(labels_a)} vs {len(labels_b)})"
        )
    n = len(labels_a)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(labels_a, labels_b, strict=True)) / n
    counts_a, counts_b = Counter(labels_a), Counter(labels_b)
    expected = sum(counts_a[label] * counts_b[label] for label in counts_a) / (n * n)
    if expected >= 1.0:
        # Both raters used one and the same label throughout: chance explains everything.
        return None
    return (observed - expected) / (1.0 - expected)


def pairwise_cohen_kappa(
    ratings: Iterable[Rating], *, min_overlap: int = DEFAULT_MIN_OVERLAP
) -> list[dict]:
    """Cohen's κ for every pair of raters sharing at least `min_overlap` units.

    Returns [{"rater_a", "rater_b", "n", "kappa", "observed"}] with rater_a < rater_b in the
    raters' sort order (observed is the plain share of units they labelled alike).
    """
    by_rater: dict[Hashable, dict[Hashable, Hashable]] = defaultdict(dict)
    for unit, labels in _by_unit(ratings).items():
        for rater, label in labels.items():
            by_rater[rater][unit] = label
    raters = _sorted(by_rater)
    rows = []
    for first, second in itertools.combinations(raters, 2):
        shared = by_rater[first].keys() & by_rater[second].keys()
        if len(shared) < min_overlap:
            continue
        units = _sorted(shared)
        labels_a = [by_rater[first][u] for u in units]
        labels_b = [by_rater[second][u] for u in units]
        rows.append(
            {
                "rater_a": first,
                "rater_b": second,
                "n": len(units),
                "kappa": cohen_kappa(labels_a, labels_b),
                "observed": sum(a == b for a, b in zip(labels_a, labels_b, strict=True))
                / len(units),
            }
        )
    return rows


def _sorted(items: Iterable[Hashable]) -> list[Hashable]:
    # Rater ids are usually ints; mixed types fall back to a stable order by their repr.
    items = list(items)
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _count_matrix(ratings: Iterable[Rating]) -> tuple[np.ndarray, list[Hashable]]:
    """Units × labels matrix of how many raters gave each label, for units with ≥ 2 ratings."""
    units = [labels for labels in _by_unit(ratings).values() if len(labels) >= 2]
    categories = sorted({label for labels in units for label in labels.values()}, key=repr)
    index = {label: k for k, label in enumerate(categories)}
    counts = np.zeros((len(units), len(categories)), dtype=np.float64)
    for row, labels in enumerate(units):
        for label in labels.values():
            counts[row, index[label]] += 1
    return counts, categories


def fleiss_kappa(ratings: Iterable[Rating]) -> float | None:
    """Fleiss' κ over units rated by two or more raters.

    Fleiss (1971) assumes the same number of raters per unit; here each unit's agreement uses
    its own count, and the label shares pool all ratings (the usual extension). With equal
    counts this is exactly Fleiss' statistic.
    """
    counts, _ = _count_matrix(ratings)
    if counts.shape[0] == 0:
        return None
    per_unit = counts.sum(axis=1)
    agreement = ((counts * counts).sum(axis=1) - per_unit) / (per_unit * (per_unit - 1))
    observed = float(agreement.mean())
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares * shares).sum())
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(ratings: Iterable[Rating]) -> float | None:
    """Krippendorff's α for nominal labels; missing ratings are simply absent triples.

    Built from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
    Alpha-Reliability"): units with a single rating are not pairable and drop out.
    """
    counts, _ = _count_matrix(ratings)
    if counts.shape[0] == 0:
        return None
    per_unit = counts.sum(axis=1)
    # Coincidences: each ordered pair of values within a unit, weighted by 1 / (m_u - 1).
    weights = 1.0 / (per_unit - 1.0)
    coincidences = np.einsum("u,uc,uk->ck", weights, counts, counts) - np.diag(
        (weights[:, None] * counts).sum(axis=0)
    )
    totals = coincidences.sum(axis=1)
    n = totals.sum()
    observed_disagreement = coincidences.sum() - np.trace(coincidences)
    expected_disagreement = (totals.sum() ** 2 - (totals * totals).sum()) / (n - 1.0)
    if expected_disagreement <= 0.0:
        return None
    return float(1.0 - observed_disagreement / expected_disagreement)


def majority_agreement(ratings: Iterable[Rating]) -> dict[Hashable, dict]:
    """Each rater's share of units where they gave the label most of the others gave.

    A unit counts for a rater when at least one other rater labelled it and the others'
    most common label is unique (a split among the others says nothing about this rater).
    Returns {rater: {"agreement": share or None, "n": units counted}}.
    """
    units = _by_unit(ratings)
    agreed: Counter = Counter()
    counted: Counter = Counter()
    raters: set[Hashable] = set()
    for labels in units.values():
        raters.update(labels)
        if len(labels) < 2:
            continue
        # Count the unit's labels once; each rater's "others" are these less their own one.
        everyone = Counter(labels.values())
        for rater, label in labels.items():
            best, best_count, unique = None, 0, False
            for other_label, count in everyone.items():
                count -= other_label == label
                if count > best_count:
                    best, best_count, unique = other_label, count, True
                elif count == best_count:
                    unique = False
            if not unique:
                continue
            counted[rater] += 1
            agreed[rater] += label == best
    return {
        rater: {
            "agreement": agreed[rater] / counted[rater] if counted[rater] else None,
            "n": counted[rater],
        }
        for rater in raters
    }
