"""Telling formats apart (the `auto` format)."""

from __future__ import annotations

import pytest

from prefs.formats.detect import detect


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        ({"prompt": "q", "responses": []}, "native"),
        ({"input": {}, "preferred_output": []}, "openai"),
        ({"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "x"}, "hh"),
        ({"prompt": "q", "chosen": "a", "rejected": "b"}, "trl"),
        ({"chosen": [{"role": "user"}], "rejected": []}, "trl"),
        ({"id": "p1", "text": "answer"}, "candidates"),
        ({"prompt": "q", "id": "p1"}, "prompts"),
        ({"messages": []}, "prompts"),
        ({"question": "?"}, None),
    ],
)
def test_detects_each_format_from_its_keys(row, fmt):
    assert detect(row) == fmt
