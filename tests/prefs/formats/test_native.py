"""The native line: sources, verdicts, split and external id survive."""

from __future__ import annotations

import pytest

from prefs.formats import native
from prefs.formats.records import ExportPair, RowError

PROMPT = [{"role": "user", "content": "Name a fruit."}]


def row(**changes):
    base = {
        "prompt": PROMPT,
        "responses": [{"text": "Apple", "source": "v1"}, {"text": "Car", "source": "v2"}],
        "preference": 1,
        "split": "heldout",
        "id": 7,
    }
    base.update(changes)
    return base


def test_a_full_row_is_read():
    record = native.parse(row(strength=3))
    assert (record.a.source, record.b.text, record.preference) == ("v1", "Car", 1)
    assert (record.split, record.external_id, record.strength) == ("heldout", "7", 3)


def test_a_row_without_preference_is_for_review():
    assert native.parse(row(preference=None)).preference is None
    assert native.parse({"prompt": "Hi", "responses": ["a", "b"]}).prompt == [
        {"role": "user", "content": "Hi"}
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"preference": 2}, "preference"),
        ({"preference": True}, "preference"),
        ({"split": "test"}, "split"),
        ({"responses": [{"text": "a"}]}, "responses"),
        ({"responses": [{"text": ""}, {"text": " "}]}, "responses[0].text"),
        ({"responses": [{"source": "x"}, {"text": "b"}]}, "responses[0].text"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [{"role": "user", "content": "  "}]}, "prompt[0].content"),
        ({"prompt": [{"role": "user", "content": 5}]}, "prompt[0].content"),
        ({"strength": 4}, "strength"),
    ],
)
def test_each_bad_field_is_named(changes, field):
    with pytest.raises(RowError) as caught:
        native.parse(row(**changes))
    assert field in [f for f, _ in caught.value.problems]


def test_export_puts_the_winner_first_and_keeps_verdicts():
    pair = ExportPair(prompt=PROMPT, chosen="Apple", rejected="Car", chosen_source="v1",
                      rejected_source="v2", weight=1.0, external_id="7", split="heldout")
    (out,) = native.rows(pair)
    back = native.parse(out)
    assert (back.a.text, back.a.source, back.preference, back.strength, back.external_id) == (
        "Apple", "v1", 0, 3, "7",
    )
    (tie,) = native.rows(ExportPair(prompt=PROMPT, chosen="a", rejected="b", kind="tie"))
    assert tie["preference"] == "tie"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompt": "nul \u0000 inside"}, "prompt"),
        ({"responses": [{"text": "ok"}, {"text": "bad \ud800 surrogate"}]}, "responses[1].text"),
        ({"responses": [{"text": "ok", "source": "a\u0000"}, {"text": "b"}]}, "responses[0].source"),
    ],
)
def test_text_a_database_cannot_store_is_refused(changes, field):
    with pytest.raises(RowError) as caught:
        native.parse(row(**changes))
    assert field in [f for f, _ in caught.value.problems]
