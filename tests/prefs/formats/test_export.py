"""Export streams: the hand-written fast lines equal the generic rows, byte for byte."""

from __future__ import annotations

import json

import pytest

from prefs.formats import export, trl
from prefs.formats.records import ExportPair

PAIRS = [
    ExportPair(prompt=[{"role": "user", "content": "Grüße \"quoted\" \\ back\nslash \t\x01 ✓"}],
               chosen="Ja — \u2028 ok", rejected="nein\r\n", weight=2 / 3),
    ExportPair(prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again?"}],
               chosen="", rejected="No.", kind="tie", weight=1.0),
    ExportPair(prompt=[{"role": "user", "content": "x"}], chosen="a", rejected="b", kind="both_bad"),
    ExportPair(prompt=[{"role": "user", "content": "x"}], chosen="a", rejected="b", weight=1),
]


@pytest.mark.parametrize("fmt", ["trl", "trl-conversational"])
def test_fast_lines_equal_the_encoded_rows(fmt):
    for pair in PAIRS:
        expected = [export._encode(row) + "\n" for row in export.ROWS[fmt](pair)]
        assert export.LINES[fmt](pair) == expected


def test_every_jsonl_format_streams_one_json_object_per_line():
    for fmt in export.JSONL_FORMATS:
        data = b"".join(export.stream(PAIRS, fmt))
        rows = [json.loads(line) for line in data.decode().split("\n")[:-1]]
        assert rows == list(export.rows(PAIRS, fmt))


def test_small_chunks_split_only_between_lines():
    chunks = list(export.chunked(export.lines(PAIRS * 50, "trl"), chunk_bytes=100))
    assert len(chunks) > 10
    assert all(chunk.endswith(b"\n") for chunk in chunks)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown export format"):
        export.stream(PAIRS, "csv")


def test_trl_prompt_text_ends_where_the_completion_starts():
    assert trl.prompt_text([{"role": "user", "content": "Hi"}]) == "\n\nHuman: Hi\n\nAssistant:"
