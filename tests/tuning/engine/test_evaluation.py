"""Evaluation helpers: preference accuracy, before/after outputs, drift on everyday prompts."""

from __future__ import annotations

import json

import pytest

from tests.tuning.engine.data.pairs import polite_rude_pairs
from tuning.engine.errors import BadInput
from tuning.engine.evaluation import (
    EVERYDAY_PROMPTS,
    accuracy_by_length,
    before_after,
    drift_kl,
    evaluate_outputs,
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


def test_accuracy_comes_with_its_interval_and_split_by_which_answer_is_longer(tiny_model, trained_adapter):
    result = preference_accuracy(
        source=tiny_model, adapter=trained_adapter, parent_adapter=None, rows=polite_rude_pairs(10, seed=4, heldout=True)
    )
    assert result["low"] < result["accuracy"] <= result["high"] + 1e-12 and result["high"] <= 1.0
    splits = result["chosen_longer"]["n"] + result["chosen_shorter"]["n"]
    assert 0 < splits <= result["n"]


def _reward(margin, chosen_tokens, rejected_tokens):
    return {"margin": margin, "chosen_tokens": chosen_tokens, "rejected_tokens": rejected_tokens}


def test_an_adapter_that_learned_shorter_wins_shows_in_the_length_split():
    # Right wherever the chosen answer is the shorter one, wrong wherever it is the longer one.
    rewards = [_reward(1.0, 10, 30)] * 16 + [_reward(-1.0, 30, 10)] * 14 + [_reward(0.0, 20, 20)] * 2
    result = accuracy_by_length(rewards)
    assert result["n"] == 32 and result["accuracy"] == pytest.approx(17 / 32)
    assert result["chosen_shorter"] == {**result["chosen_shorter"], "accuracy": 1.0, "n": 16}
    assert result["chosen_longer"]["accuracy"] == 0.0 and result["chosen_longer"]["n"] == 14
    assert result["chosen_longer"]["high"] < 0.5 < result["chosen_shorter"]["low"]
    assert result["length_balanced"] == 0.5
    # Wilson's interval at 17 of 32 (ties half), as the review statistics compute it: around chance.
    from prefs.stats.winrate import wilson_interval

    assert (result["low"], result["high"]) == pytest.approx(wilson_interval(17, 32))
    assert result["low"] < 0.5 < result["high"]


def test_one_evaluation_loads_the_base_once_and_answers_as_separate_calls_would(tiny_model, trained_adapter, monkeypatch):
    import tuning.engine.loading as loading

    loads = []
    real_load = loading.load_base
    monkeypatch.setattr(loading, "load_base", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    events = []
    result = evaluate_outputs(
        source=tiny_model,
        after_adapter=trained_adapter,
        before_adapter=None,
        prompts=PROMPTS,
        arms=[{"name": "before", "model": "before"}, {"name": "system_prompt", "model": "before", "system_prompt": "Be polite."}],
        rows=polite_rude_pairs(4, seed=4, heldout=True),
        drift_prompts=everyday_prompts()[:3],
        drift_max_new_tokens=4,
        seed=3,
        max_new_tokens=6,
        progress=events.append,
    )
    assert len(loads) == 1
    separate = before_after(
        source=tiny_model, before_adapter=None, after_adapter=trained_adapter, prompts=PROMPTS, seed=3, max_new_tokens=6
    )
    assert [s["text"] for s in result["after"]] == [r["after"] for r in separate]
    assert [s["text"] for s in result["arms"]["before"]] == [r["before"] for r in separate]
    prompted = generate(source=tiny_model, prompts=PROMPTS, seed=3, max_new_tokens=6, system_prompt="Be polite.")
    assert [s["text"] for s in result["arms"]["system_prompt"]] == [g[0]["text"] for g in prompted]
    # A random tiny model rarely stops by itself: its answers are cut off, and say so.
    assert {s["finish_reason"] for s in result["after"]} == {"length"} and result["after"][0]["tokens"] == 6
    assert result["accuracy"]["n"] == 4 and result["drift"]["n_prompts"] == 3
    phases = list(dict.fromkeys(e["phase"] for e in events))
    assert phases == ["load", "generate-after", "generate-before", "generate-system_prompt", "accuracy", "drift-generate", "drift"]
    assert set(result["seconds"]) == {"load", "generate-after", "generate-before", "generate-system_prompt", "accuracy", "drift"}


def test_an_evaluation_without_prompts_still_measures_and_refuses_unknown_arms(tiny_model, trained_adapter):
    result = evaluate_outputs(
        source=tiny_model, after_adapter=trained_adapter, before_adapter=None, prompts=[], arms=[{"name": "before", "model": "before"}],
        drift_prompts=everyday_prompts()[:2], drift_max_new_tokens=4,
    )
    assert result["after"] == [] and result["arms"] == {"before": []} and result["accuracy"] is None
    assert result["drift"]["mean_kl"] > 0
    with pytest.raises(BadInput, match="model must be one of"):
        evaluate_outputs(source=tiny_model, after_adapter=None, before_adapter=None, prompts=PROMPTS, arms=[{"name": "x", "model": "other"}])
