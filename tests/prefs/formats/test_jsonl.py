"""Reading JSON Lines: every bad line is reported with its number and reason."""

from __future__ import annotations

import io
import json

from prefs.formats.jsonl import read_objects, read_records
from prefs.formats.records import LineError, PairRecord


def lines(*items: bytes) -> io.BytesIO:
    return io.BytesIO(b"\n".join(items) + b"\n")


def test_each_kind_of_unreadable_line_is_named_with_its_number():
    stream = lines(
        b'{"ok": 1}',
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        b'{"unterminated": ',
        b"",
        b"   ",
        b'{"ok": 2}',
    )
    got = list(read_objects(stream))
    assert [number for number, _ in got] == [1, 2, 3, 4, 7]
    errors = {number: item.message for number, item in got if isinstance(item, LineError)}
    assert "not valid UTF-8" in errors[2]
    assert errors[3] == "must be a JSON object, not a list"
    assert "not valid JSON" in errors[4]


def test_a_line_over_the_limit_is_reported_and_skipped_without_losing_the_next():
    big = json.dumps({"text": "x" * 5000}).encode()
    got = list(read_objects(lines(big, b'{"after": true}'), max_line_bytes=1000))
    assert isinstance(got[0][1], LineError) and "longer than 1000 bytes" in got[0][1].message
    assert got[1] == (2, {"after": True})


def test_a_byte_order_mark_and_windows_line_ends_are_accepted():
    stream = io.BytesIO(b'\xef\xbb\xbf{"a": 1}\r\n{"b": 2}')
    assert list(read_objects(stream)) == [(1, {"a": 1}), (2, {"b": 2})]


def test_auto_detects_the_format_from_the_first_object():
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go"}
    (number, record), = read_records(io.BytesIO(json.dumps(row).encode()))
    assert number == 1 and isinstance(record, PairRecord)
    assert record.prompt == [{"role": "user", "content": "hi"}]


def test_a_file_whose_format_cannot_be_told_stops_at_the_first_line():
    stream = lines(b'{"question": "?"}', b'{"question": "!"}')
    got = list(read_records(stream))
    assert len(got) == 1
    assert "cannot tell the format" in got[0][1][0].message


def test_row_problems_become_line_errors_with_fields():
    stream = lines(
        json.dumps({"prompt": [{"role": "user", "content": "q"}], "responses": [{"text": "a"}, {"text": "b"}]}).encode(),
        json.dumps({"prompt": [{"role": "robot", "content": ""}], "responses": [{"text": "a"}]}).encode(),
    )
    got = list(read_records(stream, "native"))
    assert isinstance(got[0][1], PairRecord)
    assert sorted((e.line, e.field) for e in got[1][1]) == [
        (2, "prompt[0].content"),
        (2, "prompt[0].role"),
        (2, "responses"),
    ]


def test_an_integer_past_pythons_4300_digit_limit_is_a_line_error():
    stream = lines(b'{"ok": 1}', b'{"preference": ' + b"7" * 4301 + b"}", b'{"ok": 2}')
    got = list(read_objects(stream))
    assert [number for number, _ in got] == [1, 2, 3]
    error = got[1][1]
    assert isinstance(error, LineError) and error.line == 2
    assert "more than 4300 digits" in error.message
