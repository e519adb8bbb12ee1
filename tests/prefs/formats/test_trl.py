"""TRL preference rows in all four shapes, and the rows the export writes."""

from __future__ import annotations

import pytest

from prefs.formats import trl
from prefs.formats.records import ExportPair, RowError

USER = {"role": "user", "content": "What color is the sky?"}
BLUE = {"role": "assistant", "content": "It is blue."}
GREEN = {"role": "assistant", "content": "It is green."}


def test_conversational_with_explicit_prompt():
    record = trl.parse({"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN]})
    assert (record.prompt, record.a.text, record.b.text, record.preference) == (
        [USER], "It is blue.", "It is green.", 0,
    )


def test_conversational_with_implicit_prompt():
    record = trl.parse({"chosen": [USER, BLUE], "rejected": [USER, GREEN]})
    assert (record.prompt, record.a.text, record.b.text) == ([USER], "It is blue.", "It is green.")


def test_standard_with_explicit_prompt():
    record = trl.parse({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert record.prompt == [{"role": "user", "content": "The sky is"}]
    assert (record.a.text, record.b.text) == (" blue.", " green.")


def test_standard_with_implicit_prompt_follows_trl_extract_prompt():
    from trl.data_utils import extract_prompt

    row = {"chosen": "The sky is blue.", "rejected": "The sky is green."}
    record = trl.parse(row)
    expected = extract_prompt(row)
    assert record.prompt == [{"role": "user", "content": expected["prompt"]}]
    assert (record.a.text, record.b.text) == (expected["chosen"], expected["rejected"])


def test_a_weight_maps_back_to_a_strength():
    record = trl.parse({"prompt": [USER], "chosen": [BLUE], "rejected": [GREEN], "weight": 1.0})
    assert record.strength == 3


def test_wrong_roles_and_missing_fields_are_named():
    with pytest.raises(RowError) as caught:
        trl.parse({"prompt": [USER], "chosen": [{"role": "user", "content": "x"}], "rejected": [GREEN]})
    assert caught.value.problems == [("chosen[0].role", "must be 'assistant', not 'user'")]
    with pytest.raises(RowError) as caught:
        trl.parse({"prompt": [USER], "chosen": [BLUE]})
    assert caught.value.problems == [("rejected", "is missing")]
    with pytest.raises(RowError) as caught:
        trl.parse({"prompt": [BLUE], "chosen": [BLUE], "rejected": [GREEN]})
    assert caught.value.problems[0][0] == "prompt[0].role"
    with pytest.raises(RowError) as caught:
        trl.parse({"chosen": [USER, BLUE, USER, BLUE], "rejected": [USER, GREEN]})
    assert "exactly one assistant message" in caught.value.problems[0][1]


def test_standard_export_reads_back_as_the_same_pair():
    pair = ExportPair(
        prompt=[{"role": "system", "content": "Be kind."}, USER, BLUE, {"role": "user", "content": "Sure?"}],
        chosen="Yes.",
        rejected="No.",
        weight=2 / 3,
    )
    (row,) = trl.rows(pair)
    assert row["prompt"].endswith("\n\nAssistant:") and row["chosen"] == " Yes."
    back = trl.parse(row)
    assert (back.prompt, back.a.text, back.b.text, back.strength) == (pair.prompt, "Yes.", "No.", 2)


def test_conversational_export_passes_trl_format_checks():
    from trl.data_utils import is_conversational, maybe_extract_prompt

    pair = ExportPair(prompt=[USER], chosen="It is blue.", rejected="It is green.")
    (row,) = trl.conversational_rows(pair)
    assert is_conversational(row)
    assert maybe_extract_prompt(row) == row
    assert trl.parse(row).prompt == [USER]


def test_a_kept_tie_goes_out_in_both_orders_at_half_weight():
    pair = ExportPair(prompt=[USER], chosen="a", rejected="b", kind="tie", weight=1.0)
    assert [(r["chosen"][0]["content"], r["weight"]) for r in trl.conversational_rows(pair)] == [
        ("a", 0.5),
        ("b", 0.5),
    ]
    both_bad = ExportPair(prompt=[USER], chosen="a", rejected="b", kind="both_bad")
    assert list(trl.rows(both_bad)) == []


def test_text_a_database_cannot_store_is_refused_in_every_shape():
    with pytest.raises(RowError) as caught:
        trl.parse({"prompt": "q", "chosen": "a\u0000", "rejected": "b"})
    assert caught.value.problems[0][0] == "chosen"
    with pytest.raises(RowError) as caught:
        trl.parse({"prompt": "q\ud800", "chosen": "a", "rejected": "b"})
    assert caught.value.problems[0][0] == "prompt"
