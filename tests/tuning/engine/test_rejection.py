"""Rejection sampling: best-of-N with reward statistics, then SFT distillation or pairs."""

from __future__ import annotations

import pytest

from tests.tuning.engine.conftest import read_json
from tuning.engine.errors import BadInput
from tuning.engine.rejection import best_and_worst, distribution, rejection_sample

PROMPTS = [
    [{"role": "user", "content": "How many days are in a week?"}],
    [{"role": "user", "content": "What do bees make?"}],
    [{"role": "user", "content": "Where does the sun rise?"}],
]


def test_pairs_mode_keeps_the_best_and_pairs_it_with_the_worst(tiny_model, trained_adapter):
    reward = {"kind": "implicit", "adapter": trained_adapter, "beta": 0.1}
    result = rejection_sample(
        source=tiny_model,
        adapter=None,
        prompts=PROMPTS,
        reward=reward,
        config={"n": 4, "mode": "pairs", "max_new_tokens": 8, "seed": 1},
    )
    assert [len(s) for s in result["samples"]] == [4, 4, 4]
    for kept, samples in zip(result["kept"], result["samples"], strict=True):
        assert kept["reward"] == max(s["reward"] for s in samples)
    assert result["pairs"]
    for pair in result["pairs"]:
        samples = result["samples"][pair["prompt_index"]]
        assert pair["chosen_reward"] == max(s["reward"] for s in samples)
        assert pair["rejected_reward"] == min(s["reward"] for s in samples)
        assert pair["chosen"] == [{"role": "assistant", "content": pair["chosen_text"]}]
    stats = result["reward_stats"]
    assert stats["all"]["n"] == 12 and stats["kept"]["n"] == 3
    assert stats["kept"]["mean"] >= stats["all"]["mean"]
    assert "output_dir" not in result


def test_sft_mode_distils_the_kept_answers_into_a_child_adapter(tiny_model, trained_adapter, tmp_path):
    result = rejection_sample(
        source=tiny_model,
        adapter=trained_adapter,
        prompts=PROMPTS,
        reward={"kind": "implicit", "adapter": trained_adapter, "beta": 0.1},
        config={"n": 2, "max_new_tokens": 6, "epochs": 2, "sft_batch_size": 2},
        output_dir=tmp_path / "child",
    )
    assert result["output_dir"] == str(tmp_path / "child")
    assert result["history"] and "loss" in result["metrics"]
    meta = read_json(tmp_path / "child" / "prefloop.json")
    assert meta["job"] == "rejection_sft" and meta["parent_adapter"] == trained_adapter
    assert (tmp_path / "child" / "adapter_model.safetensors").is_file()


def test_sft_mode_needs_an_output_folder_and_prompts(tiny_model, trained_adapter):
    reward = {"kind": "implicit", "adapter": trained_adapter}
    with pytest.raises(BadInput, match="output_dir is required"):
        rejection_sample(source=tiny_model, adapter=None, prompts=PROMPTS, reward=reward)
    with pytest.raises(BadInput, match="prompt list is empty"):
        rejection_sample(source=tiny_model, adapter=None, prompts=[], reward=reward, config={"mode": "pairs"})
    with pytest.raises(BadInput, match="mode must be one of"):
        rejection_sample(source=tiny_model, adapter=None, prompts=PROMPTS, reward=reward, config={"mode": "best"})


def test_answers_are_scored_in_the_conversation_they_were_sampled_in_system_prompt_included(tiny_model, trained_adapter):
    from tuning.engine.chat import with_system_prompt
    from tuning.engine.reward import score

    reward = {"kind": "implicit", "adapter": trained_adapter, "beta": 0.1}
    system = "Answer in one short, polite sentence."
    result = rejection_sample(
        source=tiny_model, adapter=None, prompts=PROMPTS, reward=reward,
        config={"n": 2, "mode": "pairs", "max_new_tokens": 6, "seed": 2, "system_prompt": system},
    )
    items = [{"prompt": prompt, "response": s["text"]} for prompt, group in zip(PROMPTS, result["samples"], strict=True) for s in group]
    got = [s["reward"] for group in result["samples"] for s in group]
    with_system = score(source=tiny_model, reward=reward, items=[{**i, "prompt": with_system_prompt(i["prompt"], system)} for i in items])
    without = score(source=tiny_model, reward=reward, items=items)
    assert got == pytest.approx(with_system)
    assert got != pytest.approx(without)


def test_an_answer_that_ended_is_kept_over_a_better_scored_one_that_was_cut_off():
    samples = [
        {"text": "a long answer that never", "reward": 2.0, "finish_reason": "length"},
        {"text": "Short and done.", "reward": 0.5, "finish_reason": "stop"},
        {"text": "Also done.", "reward": 0.5, "finish_reason": "stop"},
        {"text": "Bad.", "reward": -1.0, "finish_reason": "stop"},
    ]
    assert best_and_worst(samples) == (1, 3)
    # With every answer cut off, the reward alone decides.
    cut = [{**s, "finish_reason": "length"} for s in samples]
    assert best_and_worst(cut) == (0, 3)


def test_the_distribution_summary():
    stats = distribution([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats["mean"] == 3.0 and stats["min"] == 1.0 and stats["max"] == 5.0
    assert stats["quantiles"]["p50"] == 3.0 and stats["quantiles"]["p25"] == 2.0
    assert stats["std"] == pytest.approx(2**0.5)
