"""Shared-prompt packing computes exactly the log-probabilities of separate sequences."""

from __future__ import annotations

import pytest
import torch

from tuning.engine.chat import encode_pairs
from tuning.engine.loading import load_base
from tuning.engine.logprobs import length_grouped, pack, pair_logps, sequence_logps


@pytest.fixture(scope="module")
def model_and_pairs(tiny_model):
    from tests.tuning.engine.data.pairs import polite_rude_pairs

    model, tokenizer = load_base(tiny_model)
    pairs, _ = encode_pairs(tokenizer, polite_rude_pairs(6), max_length=None)
    return model, tokenizer, pairs


def _one_by_one(model, prompt, response):
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logp = model(ids).logits[0].log_softmax(-1)
    return sum(float(logp[len(prompt) - 1 + t, token]) for t, token in enumerate(response))


@pytest.mark.parametrize("share_prompt", [True, False])
def test_packed_log_probs_equal_each_response_run_alone(model_and_pairs, share_prompt):
    model, tokenizer, pairs = model_and_pairs
    groups = [(p.prompt, [p.chosen, p.rejected]) for p in pairs]
    with torch.no_grad():
        packed = sequence_logps(model, pack(groups, pad_token_id=tokenizer.pad_token_id, share_prompt=share_prompt))
    expected = [_one_by_one(model, p.prompt, r) for p in pairs for r in (p.chosen, p.rejected)]
    assert packed.tolist() == pytest.approx(expected, abs=1e-4)


def test_groups_may_hold_different_numbers_of_responses(model_and_pairs):
    model, tokenizer, pairs = model_and_pairs
    groups = [(pairs[0].prompt, [pairs[0].chosen]), (pairs[1].prompt, [pairs[1].chosen, pairs[1].rejected, pairs[2].chosen])]
    with torch.no_grad():
        packed = sequence_logps(model, pack(groups, pad_token_id=tokenizer.pad_token_id))
    expected = [
        _one_by_one(model, pairs[0].prompt, pairs[0].chosen),
        _one_by_one(model, pairs[1].prompt, pairs[1].chosen),
        _one_by_one(model, pairs[1].prompt, pairs[1].rejected),
        _one_by_one(model, pairs[1].prompt, pairs[2].chosen),
    ]
    assert packed.tolist() == pytest.approx(expected, abs=1e-4)


def test_pair_log_probs_come_back_in_the_callers_order(model_and_pairs):
    model, tokenizer, pairs = model_and_pairs
    chosen, rejected = pair_logps(model, pairs, pad_token_id=tokenizer.pad_token_id, batch_size=4)
    assert chosen.tolist() == pytest.approx([_one_by_one(model, p.prompt, p.chosen) for p in pairs], abs=1e-4)
    assert rejected.tolist() == pytest.approx([_one_by_one(model, p.prompt, p.rejected) for p in pairs], abs=1e-4)


def test_length_grouping_puts_similar_lengths_together():
    batches = length_grouped([5, 100, 7, 98, 6, 99], 2)
    assert batches == [[1, 5], [3, 2], [4, 0]]


def test_scoring_in_chunks_gives_the_same_numbers(model_and_pairs, monkeypatch):
    from tuning.engine import logprobs

    model, tokenizer, pairs = model_and_pairs
    groups = [(p.prompt, [p.chosen, p.rejected]) for p in pairs]
    batch = pack(groups, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        whole = sequence_logps(model, batch)
        monkeypatch.setattr(logprobs, "_HEAD_CHUNK", 7)
        chunked = sequence_logps(model, batch)
    torch.testing.assert_close(chunked, whole)
