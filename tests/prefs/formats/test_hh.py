"""Anthropic HH transcripts: the shared prompt split off, multi-turn kept as messages."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from prefs.formats import hh
from prefs.formats.jsonl import read_records
from prefs.formats.records import ExportPair, RowError

HH_FILE = Path("/work/shared/data/hh-rlhf-harmless-base-test.jsonl.gz")


def test_a_multi_turn_transcript_becomes_messages_and_two_replies():
    record = hh.parse(
        {
            "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: Knock knock.",
            "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: No.",
        }
    )
    assert record.prompt == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert (record.a.text, record.b.text, record.preference) == ("Knock knock.", "No.", 0)


def test_transcripts_that_part_before_the_last_turn_keep_the_rest_as_the_reply():
    record = hh.parse(
        {
            "chosen": "\n\nHuman: A?\n\nAssistant: B.\n\nHuman: C?\n\nAssistant: D.",
            "rejected": "\n\nHuman: A?\n\nAssistant: E.",
        }
    )
    assert record.prompt == [{"role": "user", "content": "A?"}]
    assert record.a.text == "B.\n\nHuman: C?\n\nAssistant: D."
    assert hh.render_transcript(record.prompt, record.a.text).endswith("Assistant: D.")


def test_transcripts_without_a_shared_human_turn_are_refused():
    with pytest.raises(RowError) as caught:
        hh.parse({"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: X\n\nAssistant: Y"})
    assert caught.value.problems[0][0] == "chosen"
    with pytest.raises(RowError):
        hh.parse({"chosen": "no turns here", "rejected": "none here"})
    with pytest.raises(RowError) as caught:
        hh.parse({"chosen": "\n\nHuman: A\n\nAssistant: B", "rejected": "\n\nHuman: A\n\nAssistant: B"})
    assert "same text" in caught.value.problems[0][1]


def test_export_writes_the_transcripts_back():
    pair = ExportPair(prompt=[{"role": "user", "content": "Hi"}], chosen="Hello", rejected="Go")
    assert list(hh.rows(pair)) == [
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go"}
    ]


def test_every_line_of_the_real_hh_file_parses_and_renders_back_byte_for_byte():
    if not HH_FILE.exists():
        pytest.skip("the shared HH file is not on this machine")
    data = gzip.decompress(HH_FILE.read_bytes())
    originals = [json.loads(line) for line in data.splitlines()]
    records = [record for _, record in read_records(io.BytesIO(data), "hh")]
    assert len(records) == 2312
    for original, record in zip(originals, records, strict=True):
        assert hh.render_transcript(record.prompt, record.a.text) == original["chosen"]
        assert hh.render_transcript(record.prompt, record.b.text) == original["rejected"]
