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


# Prompt contents that cover every escape JSON knows, and text that only looks like one.
CONTENTS = [
    "Plain question?",
    'She said "hi"',
    "back\\slash, a \\u0041 look-alike and a \\/ one",
    "lines\nand\ttabs\r, \b, \f and \x01 \x1f \x7f",
    "Grüße ✓ \u2028 \U0001f600",
    "",
    "ends with a backslash \\",
]


def _prompt_texts(messages: list[dict]) -> list[str]:
    # PostgreSQL's jsonb text and Django's json.dumps on SQLite (ASCII escapes), plus a key
    # order neither writes.
    reordered = [{"content": m["content"], "role": m["role"]} for m in messages]
    return [json.dumps(messages, ensure_ascii=False), json.dumps(messages), json.dumps(reordered)]


@pytest.mark.parametrize("content", CONTENTS)
def test_trl_prompt_from_json_text_equals_the_encoded_prompt_text(content):
    for messages in (
        [{"role": "user", "content": content}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}],
        [{"role": "user", "content": content}, {"role": "assistant", "content": "ok"},
         {"role": "user", "content": "more"}],
    ):
        expected = export._string(trl.prompt_text(messages))
        for text in _prompt_texts(messages):
            assert export.trl_prompt(text) == expected


def test_trl_prompt_of_one_plain_user_turn_is_not_parsed(monkeypatch):
    def refuse(_text):
        raise AssertionError("parsed")

    monkeypatch.setattr(export.json, "loads", refuse)
    messages = [{"role": "user", "content": "Grüße\n\t✓ \\ back"}]
    assert export.trl_prompt(json.dumps(messages, ensure_ascii=False)) == export._string(
        trl.prompt_text(messages)
    )


def _trl_rows(pairs) -> list[tuple]:
    return [(json.dumps(p.prompt, ensure_ascii=False), p.chosen, p.rejected, p.kind, p.weight)
            for p in pairs]


def test_trl_stream_from_rows_equals_the_pair_stream():
    pairs = PAIRS + [
        ExportPair(prompt=[{"role": "user", "content": content}], chosen=f"yes {i}", rejected="no",
                   kind=kind, weight=weight)
        for i, content in enumerate(CONTENTS)
        for kind in ("preferred", "tie", "both_bad")
        for weight in (1.0, 1, 1 / 3)
    ]
    assert b"".join(export.trl_stream(_trl_rows(pairs))) == b"".join(export.stream(pairs, "trl"))


def test_trl_stream_writes_many_distinct_weights_and_signed_zero_exactly():
    prompt = [{"role": "user", "content": "x"}]
    weights = [k / 1000 for k in range(1, 600)] * 2 + [1, 1.0, True, 0.0, -0.0, 0.0, -0.0]
    pairs = [ExportPair(prompt=prompt, chosen="a", rejected="b", weight=w) for w in weights]
    assert b"".join(export.trl_stream(_trl_rows(pairs))) == b"".join(export.stream(pairs, "trl"))


def test_trl_stream_chunks_end_between_lines():
    rows = _trl_rows(PAIRS * 50)
    chunks = list(export.trl_stream(rows, chunk_bytes=100))
    assert len(chunks) > 10
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert b"".join(chunks) == b"".join(export.trl_stream(rows))
    assert list(export.trl_stream([])) == []
