"""Prompts-only rows."""

from __future__ import annotations

import pytest

from prefs.formats import prompts
from prefs.formats.records import RowError


def test_a_prompt_row_with_id_split_and_tags():
    record = prompts.parse({"prompt": "Hello?", "id": "p1", "split": "heldout", "tags": ["greeting"]})
    assert record.messages == [{"role": "user", "content": "Hello?"}]
    assert (record.external_id, record.split, record.tags) == ("p1", "heldout", ["greeting"])
    assert prompts.parse({"messages": [{"role": "user", "content": "x"}]}).messages[0]["content"] == "x"


def test_a_prompt_must_end_on_a_user_turn():
    with pytest.raises(RowError) as caught:
        prompts.parse({"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    assert caught.value.problems[0][0] == "prompt[1].role"
    with pytest.raises(RowError):
        prompts.parse({"tags": "x"})
