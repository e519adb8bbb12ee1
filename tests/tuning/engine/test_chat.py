"""Encoding conversations and preference rows, with explicit handling of over-long rows."""

from __future__ import annotations

import pytest

from tuning.engine.chat import encode_pairs, split_completion, with_system_prompt
from tuning.engine.errors import BadInput
from tuning.engine.loading import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(tiny_model)


def test_prompt_and_response_ids_rebuild_the_whole_conversation(tokenizer):
    prompt = [{"role": "user", "content": "Where is Paris?"}]
    response = [{"role": "assistant", "content": "In France."}]
    p_ids, r_ids = split_completion(tokenizer, prompt, response)
    whole = tokenizer.apply_chat_template(prompt + response, tokenize=True, return_dict=True)["input_ids"]
    assert p_ids + r_ids == list(whole)
    assert tokenizer.decode(r_ids) == "In France.<|im_end|>\n"


def test_an_empty_set_is_refused(tokenizer):
    with pytest.raises(BadInput, match="preference set is empty"):
        encode_pairs(tokenizer, [], max_length=64)


def test_a_malformed_row_is_named(tokenizer, rows):
    broken = rows[:3] + [{"prompt": [{"role": "user", "content": "hi"}], "chosen": "ok"}]
    with pytest.raises(BadInput, match="row 3: expected keys 'prompt', 'chosen' and 'rejected'"):
        encode_pairs(tokenizer, broken, max_length=64)
    bad_role = [{**rows[0], "prompt": [{"role": "robot", "content": "beep"}]}]
    with pytest.raises(BadInput, match="row 0, prompt, message 0: unknown role 'robot'"):
        encode_pairs(tokenizer, bad_role, max_length=64)


def test_bare_strings_are_accepted_as_messages(tokenizer):
    pairs, _ = encode_pairs(tokenizer, [{"prompt": "hi", "chosen": "hello!", "rejected": "go away"}], max_length=None)
    assert tokenizer.decode(pairs[0].chosen) == "hello!<|im_end|>\n"


def _long_rows(rows):
    long_answer = {"role": "assistant", "content": "very " * 80 + "long"}
    return [rows[0], {**rows[1], "rejected": [long_answer]}, rows[2]]


def test_over_long_rows_are_truncated_and_reported(tokenizer, rows):
    pairs, report = encode_pairs(tokenizer, _long_rows(rows), max_length=160, truncation="truncate")
    assert report.as_dict()["truncated"] == 1 and report.as_dict()["truncated_rows"] == [1]
    assert len(pairs) == 3
    assert all(len(p.prompt) + max(len(p.chosen), len(p.rejected)) <= 160 for p in pairs)


def test_over_long_rows_can_be_dropped(tokenizer, rows):
    pairs, report = encode_pairs(tokenizer, _long_rows(rows), max_length=160, truncation="drop")
    assert [p.index for p in pairs] == [0, 2]
    assert report.as_dict()["dropped_rows"] == [1]


def test_over_long_rows_can_be_an_error_naming_them(tokenizer, rows):
    with pytest.raises(BadInput, match=r"1 row\(s\) .* longer than max_length=160 tokens: row 1 \(\d+ tokens\)"):
        encode_pairs(tokenizer, _long_rows(rows), max_length=160, truncation="error")


def test_a_set_with_only_over_long_rows_is_empty_after_dropping(tokenizer, rows):
    with pytest.raises(BadInput, match="empty after dropping 3 row"):
        encode_pairs(tokenizer, rows[:3], max_length=4, truncation="truncate")


def test_a_system_prompt_goes_first_and_keeps_an_existing_one():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    merged = with_system_prompt(messages, "Be kind.")
    assert merged[0] == {"role": "system", "content": "Be kind.\n\nBe brief."}
    assert with_system_prompt(messages[1:], "Be kind.")[0] == {"role": "system", "content": "Be kind."}
    assert with_system_prompt(messages, None) == messages
