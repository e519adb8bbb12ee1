"""Candidate rows for existing prompts."""

from __future__ import annotations

import pytest

from prefs.formats import candidates
from prefs.formats.records import RowError


def test_a_candidate_names_its_prompt_and_source():
    record = candidates.parse({"id": 3, "text": "An answer.", "source": "adapter-v2"})
    assert (record.prompt_external_id, record.text, record.source) == ("3", "An answer.", "adapter-v2")


def test_a_candidate_needs_an_id_and_some_text():
    with pytest.raises(RowError) as caught:
        candidates.parse({"text": " "})
    assert sorted(f for f, _ in caught.value.problems) == ["id", "text"]
