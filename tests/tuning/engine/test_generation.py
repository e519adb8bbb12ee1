"""Batched sampling: N samples per prompt, seeded, with token counts and finish reasons."""

from __future__ import annotations

import pytest
import torch

from tuning.engine.errors import BadInput, Cancelled
from tuning.engine.generation import generate, generate_with
from tuning.engine.loading import load_base

PROMPTS = [
    [{"role": "user", "content": "Where is Paris?"}],
    [{"role": "user", "content": "Write a haiku about the sea and the wind, please."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
]


def test_n_samples_per_prompt_with_counts_and_reasons(tiny_model):
    results = generate(source=tiny_model, prompts=PROMPTS, n=3, max_new_tokens=6, seed=1)
    assert [len(samples) for samples in results] == [3, 3, 3]
    for samples in results:
        for sample in samples:
            assert set(sample) == {"text", "tokens", "finish_reason"}
            assert 1 <= sample["tokens"] <= 6
            assert sample["finish_reason"] in ("stop", "length")


def test_the_same_seed_gives_the_same_samples_and_another_seed_others(tiny_model):
    first = generate(source=tiny_model, prompts=PROMPTS, n=2, max_new_tokens=8, seed=5)
    again = generate(source=tiny_model, prompts=PROMPTS, n=2, max_new_tokens=8, seed=5)
    other = generate(source=tiny_model, prompts=PROMPTS, n=2, max_new_tokens=8, seed=6)
    assert first == again
    assert first != other


def test_batched_greedy_answers_equal_one_prompt_at_a_time(tiny_model):
    # Left padding must not change what a prompt gets: the long and short prompts share a batch.
    model, tokenizer = load_base(tiny_model)
    batched = generate_with(model, tokenizer, PROMPTS, temperature=0, max_new_tokens=8, batch_size=8)
    alone = [generate_with(model, tokenizer, [p], temperature=0, max_new_tokens=8)[0] for p in PROMPTS]
    assert batched == alone


def test_an_answer_that_ends_reports_stop_and_leaves_the_end_token_out(tiny_model):
    # Make the end token the model's favourite: its output embedding points where every final
    # hidden state points (the final norm keeps only dimension 0, which we make positive).
    model, tokenizer = load_base(tiny_model)
    eos = tokenizer.eos_token_id
    with torch.no_grad():
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos, 0] = 30.0
    results = generate_with(model, tokenizer, PROMPTS, n=4, temperature=1.0, max_new_tokens=40, seed=0, return_ids=True)
    stopped = [s for samples in results for s in samples if s["finish_reason"] == "stop"]
    assert stopped, "the end token never came"
    for sample in stopped:
        assert sample["token_ids"][-1] == eos and len(sample["token_ids"]) == sample["tokens"]
        assert eos not in sample["token_ids"][:-1]
        assert sample["text"] == tokenizer.decode(sample["token_ids"][:-1])
        assert "<|im_end|>" not in sample["text"]


def test_a_system_prompt_changes_what_the_model_sees(tiny_model):
    settings = {"source": tiny_model, "temperature": 1.0, "max_new_tokens": 8, "seed": 3}
    plain = generate(prompts=PROMPTS[:1], **settings)
    system = generate(prompts=PROMPTS[:1], system_prompt="Be kind.", **settings)
    explicit = generate(prompts=[[{"role": "system", "content": "Be kind."}, *PROMPTS[0]]], **settings)
    assert system == explicit
    assert system != plain


def test_bad_sampling_settings_are_named(tiny_model):
    with pytest.raises(BadInput, match="top_p must be in"):
        generate(source=tiny_model, prompts=PROMPTS, top_p=0)
    with pytest.raises(BadInput, match="prompt 1, message 0: expected"):
        generate(source=tiny_model, prompts=[PROMPTS[0], ["hello"]])


def test_progress_is_reported_per_batch_and_can_stop_the_work(tiny_model):
    events = []
    generate(source=tiny_model, prompts=PROMPTS, n=2, max_new_tokens=2, batch_size=2, progress=events.append)
    assert [e["step"] for e in events] == [1, 2, 3]
    assert all(e["phase"] == "generate" and e["total_steps"] == 3 for e in events)
    with pytest.raises(Cancelled):
        generate(source=tiny_model, prompts=PROMPTS, n=2, max_new_tokens=2, batch_size=2, progress=lambda e: True)


@pytest.mark.slow
def test_the_default_model_answers_and_stops_on_its_own():
    results = generate(
        source="smollm2-135m-instruct",
        prompts=[[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]],
        temperature=0,
        max_new_tokens=40,
    )
    (answer,) = results[0]
    assert "Paris" in answer["text"]
    assert answer["finish_reason"] == "stop"
    assert answer["tokens"] < 40
