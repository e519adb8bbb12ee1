"""Evaluation helpers: preference accuracy, before/after outputs, drift on everyday prompts."""

from __future__ import annotations

import json

from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.evaluation import (
    EVERYDAY_PROMPTS,
    before_after,
    drift_kl,
    everyday_prompts,
    preference_accuracy,
)
from tuning.engine.generation import generate

PROMPTS = [[{"role": "user", "content": "What do bees make?"}], [{"role": "user", "content": "hi"}]]


def test_an_adapter_judged_against_itself_is_at_chance(tiny_model, trained_adapter):
    result = preference_accuracy(
        source=tiny_model, adapter=trained_adapter, parent_adapter=trained_adapter, rows=polite_rude_pairs(6)
    )
    assert result["accuracy"] == 0.5 and result["ties"] == 6 and result["mean_margin"] == 0.0


def test_a_trained_adapter_ranks_held_out_pairs_right(tiny_model, trained_adapter):
    result = preference_accuracy(
        source=tiny_model, adapter=trained_adapter, parent_adapter=None, rows=polite_rude_pairs(10, seed=4, heldout=True)
    )
    assert result["n"] == 10
    assert result["accuracy"] >= 0.8 and result["mean_margin"] > 0


def test_before_and_after_use_the_same_prompts_and_seed(tiny_model, trained_adapter):
    same = before_after(
        source=tiny_model, before_adapter=trained_adapter, after_adapter=trained_adapter, prompts=PROMPTS, seed=3, max_new_tokens=6
    )
    assert [r["before"] for r in same] == [r["after"] for r in same]
    baseline = before_after(
        source=tiny_model,
        before_adapter=None,
        after_adapter=trained_adapter,
        prompts=PROMPTS,
        seed=3,
        max_new_tokens=6,
        system_prompt="Be polite.",
    )
    # The before side is the base with the system prompt: the "just ask nicely" baseline.
    expected = generate(source=tiny_model, prompts=PROMPTS, seed=3, max_new_tokens=6, system_prompt="Be polite.")
    assert [r["before"] for r in baseline] == [s[0]["text"] for s in expected]
    assert [r["after"] for r in baseline] == [r["after"] for r in same]
    assert {"before_tokens", "after_finish_reason"} <= set(baseline[0])


def test_drift_is_zero_against_itself_and_positive_against_the_base(tiny_model, trained_adapter):
    prompts = everyday_prompts()[:6]
    itself = drift_kl(source=tiny_model, adapter=trained_adapter, parent_adapter=trained_adapter, prompts=prompts, max_new_tokens=8)
    assert itself["mean_kl"] == 0.0 and itself["n_prompts"] == 6
    base = drift_kl(source=tiny_model, adapter=trained_adapter, parent_adapter=None, prompts=prompts, max_new_tokens=8)
    assert base["mean_kl"] > 0 and base["n_tokens"] > 6


def test_the_shipped_everyday_prompts_are_short_and_ordinary():
    data = json.loads(EVERYDAY_PROMPTS.read_text())
    assert 30 <= len(data["prompts"]) <= 60
    assert all(10 < len(p) < 120 for p in data["prompts"])
