"""OpenAI preference fine-tuning rows."""

from __future__ import annotations

import pytest

from prefs.formats import openai
from prefs.formats.records import ExportPair, RowError

SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "How cold is it?"}


def test_export_rows_have_openais_shape_and_read_back():
    pair = ExportPair(prompt=[SYSTEM, USER], chosen="Cold.", rejected="I cannot say.", weight=0.5)
    (row,) = openai.rows(pair)
    assert row == {
        "input": {"messages": [SYSTEM, USER], "tools": [], "parallel_tool_calls": True},
        "preferred_output": [{"role": "assistant", "content": "Cold."}],
        "non_preferred_output": [{"role": "assistant", "content": "I cannot say."}],
    }
    back = openai.parse(row)
    assert (back.prompt, back.a.text, back.b.text, back.preference) == (
        [SYSTEM, USER], "Cold.", "I cannot say.", 0,
    )


def test_outputs_must_be_one_assistant_message():
    row = {
        "input": {"messages": [USER]},
        "preferred_output": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}],
        "non_preferred_output": "c",
    }
    with pytest.raises(RowError) as caught:
        openai.parse(row)
    assert [f for f, _ in caught.value.problems] == ["preferred_output", "non_preferred_output"]


def test_missing_input_is_named():
    with pytest.raises(RowError) as caught:
        openai.parse({"preferred_output": [], "non_preferred_output": []})
    assert caught.value.problems[0] == ("input", "is missing")
