from __future__ import annotations

import itertools

import numpy as np
import pytest

from prefs.stats.agreement import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha_nominal,
    majority_agreement,
    pairwise_cohen_kappa,
)


def _from_count_table(table: list[list[int]]) -> list[tuple[int, int, int]]:
    """(unit, rater, label) triples reproducing a units × categories table of counts."""
    ratings = []
    for unit, row in enumerate(table):
        rater = 0
        for label, count in enumerate(row):
            for _ in range(count):
                ratings.append((unit, rater, label))
                rater += 1
    return ratings


def test_cohen_kappa_matches_the_textbook_example():
    # 50 proposals, two readers: yes/yes 20, yes/no 5, no/yes 10, no/no 15 → p_o 0.7,
    # p_e 0.5, κ 0.4 (the standard worked example, e.g. Wikipedia's "Cohen's kappa").
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_is_one_for_perfect_agreement_and_none_without_variation():
    assert cohen_kappa(["A", "B", "A"], ["A", "B", "A"]) == pytest.approx(1.0)
    assert cohen_kappa(["A", "A"], ["A", "A"]) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="length"):
        cohen_kappa(["A"], ["A", "B"])


def test_fleiss_kappa_matches_the_textbook_example():
    # Ten subjects, fourteen raters, five categories: κ = 0.210 (the worked example in
    # Wikipedia's "Fleiss' kappa": P̄ = 0.378, P̄e = 0.213).
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(_from_count_table(table)) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_with_two_raters_agrees_with_scotts_pi():
    # With two raters per unit Fleiss' κ is Scott's π, computed here independently.
    rng = np.random.default_rng(3)
    a = rng.choice(["A", "B", "tie"], size=60, p=[0.5, 0.4, 0.1])
    b = np.where(rng.random(60) < 0.7, a, rng.choice(["A", "B", "tie"], size=60))
    ratings = [(u, 1, x) for u, x in enumerate(a)] + [(u, 2, y) for u, y in enumerate(b)]
    observed = float(np.mean(a == b))
    pooled = np.concatenate([a, b])
    expected = sum(float(np.mean(pooled == c)) ** 2 for c in ["A", "B", "tie"])
    scotts_pi = (observed - expected) / (1 - expected)
    assert fleiss_kappa(ratings) == pytest.approx(scotts_pi)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
# observers, twelve units, missing values; nominal α = 0.743.
KRIPPENDORFF_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _triples(data: dict[str, list]) -> list[tuple[int, str, object]]:
    return [
        (unit, rater, value)
        for rater, values in data.items()
        for unit, value in enumerate(values)
        if value is not None
    ]


def test_krippendorff_alpha_matches_krippendorffs_own_example():
    assert krippendorff_alpha_nominal(_triples(KRIPPENDORFF_DATA)) == pytest.approx(0.743, abs=5e-4)


def _alpha_by_pair_counting(ratings: list[tuple]) -> float:
    """α = 1 - D_o / D_e straight from the definition, by enumerating pairs of values."""
    units: dict = {}
    for unit, rater, value in ratings:
        units.setdefault(unit, {})[rater] = value
    pairable = [list(v.values()) for v in units.values() if len(v) >= 2]
    values = [x for unit in pairable for x in unit]
    n = len(values)
    within = sum(
        sum(a != b for a, b in itertools.permutations(unit, 2)) / (len(unit) - 1)
        for unit in pairable
    )
    between = sum(a != b for a, b in itertools.permutations(values, 2))
    return 1 - (within / n) / (between / (n * (n - 1)))


def test_krippendorff_alpha_equals_the_pair_counting_definition_on_random_sparse_data():
    rng = np.random.default_rng(7)
    for _ in range(5):
        truth = rng.choice(4, size=40)
        ratings = []
        for unit, value in enumerate(truth):
            for rater in range(5):
                if rng.random() < 0.5:
                    continue
                label = value if rng.random() < 0.6 else rng.choice(4)
                ratings.append((unit, rater, int(label)))
        assert krippendorff_alpha_nominal(ratings) == pytest.approx(
            _alpha_by_pair_counting(ratings)
        )


def test_krippendorff_alpha_ignores_units_with_a_single_rating():
    base = _triples(KRIPPENDORFF_DATA)
    lonely = [(100, "A", 9), (101, "B", 1)]
    assert krippendorff_alpha_nominal(base + lonely) == pytest.approx(
        krippendorff_alpha_nominal(base)
    )
    assert krippendorff_alpha_nominal(lonely) is None


def test_pairwise_kappa_reports_only_pairs_with_enough_overlap():
    ratings = [(u, 1, "A" if u % 3 else "B") for u in range(12)]
    ratings += [(u, 2, "A" if u % 3 else "B") for u in range(12)]
    ratings += [(u, 3, "A") for u in range(5)]
    rows = pairwise_cohen_kappa(ratings, min_overlap=10)
    assert [(r["rater_a"], r["rater_b"], r["n"]) for r in rows] == [(1, 2, 12)]
    assert rows[0]["kappa"] == pytest.approx(1.0)
    assert rows[0]["observed"] == pytest.approx(1.0)
    assert len(pairwise_cohen_kappa(ratings, min_overlap=5)) == 3


def test_majority_agreement_counts_units_where_the_others_have_a_clear_majority():
    ratings = [
        # Unit 0: everyone says A.
        (0, "ann", "A"),
        (0, "bob", "A"),
        (0, "cat", "A"),
        # Unit 1: ann and bob say B, cat says A: cat disagrees with the others' majority.
        (1, "ann", "B"),
        (1, "bob", "B"),
        (1, "cat", "A"),
        # Unit 2: split between the two others for each rater of a three-way split.
        (2, "ann", "A"),
        (2, "bob", "B"),
        (2, "cat", "tie"),
        # Unit 3: only one rating, nothing to compare against.
        (3, "ann", "A"),
    ]
    result = majority_agreement(ratings)
    assert result["cat"] == {"agreement": 0.5, "n": 2}
    # ann on unit 1: others are bob (B) and cat (A), a split, so it does not count.
    assert result["ann"] == {"agreement": 1.0, "n": 1}
    assert result["bob"] == {"agreement": 1.0, "n": 1}


def test_majority_agreement_matches_a_direct_count_on_random_data():
    from collections import Counter

    rng = np.random.default_rng(12)
    ratings = [
        (unit, rater, str(rng.choice(["A", "B", "tie"], p=[0.45, 0.45, 0.1])))
        for unit in range(200)
        for rater in rng.choice(8, size=int(rng.integers(1, 6)), replace=False)
    ]
    units: dict = {}
    for unit, rater, label in ratings:
        units.setdefault(unit, {})[rater] = label
    expected: dict = {}
    for labels in units.values():
        for rater, label in labels.items():
            others = Counter(v for r, v in labels.items() if r != rater).most_common()
            if not others or (len(others) > 1 and others[0][1] == others[1][1]):
                continue
            hits, n = expected.get(rater, (0, 0))
            expected[rater] = (hits + (label == others[0][0]), n + 1)
    result = majority_agreement(ratings)
    for rater, (hits, n) in expected.items():
        assert result[rater] == {"agreement": pytest.approx(hits / n), "n": n}
