"""Reading JSON Lines safely: one decoded object per line, or a line-numbered error.

Reads with bounded memory: a line longer than the limit is skipped in pieces and reported,
never held whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import BinaryIO

from prefs.formats import candidates, hh, native, openai, prompts, trl
from prefs.formats.detect import detect
from prefs.formats.records import LineError, Record, RowError, _type_name

# Longest line accepted, in bytes (without its newline).
MAX_LINE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"

PARSERS: dict[str, Callable[[dict], Record]] = {
    "native": native.parse,
    "trl": trl.parse,
    "trl-conversational": trl.parse,
    "hh": hh.parse,
    "openai": openai.parse,
    "prompts": prompts.parse,
    "candidates": candidates.parse,
}
IMPORT_FORMATS = ("auto", "native", "trl", "hh", "openai", "prompts", "candidates")


def read_objects(
    stream: BinaryIO, *, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, dict | LineError]]:
    """(line number, object or error) for every non-blank line, numbered from 1."""
    number = 0
    while True:
        raw = stream.readline(max_line_bytes + 1)
        if not raw:
            return
        number += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            while True:
                rest = stream.readline(max_line_bytes)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, LineError(
                number, "", f"line is longer than {max_line_bytes} bytes ({max_line_bytes // 1024} KiB)"
            )
            continue
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, LineError(number, "", f"is not valid UTF-8 (byte {exc.start + 1} of the line)")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, "", f"is not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, LineError(number, "", "is not valid JSON: nested too deeply")
            continue
        except ValueError:
            # Python's guard against slow conversions: int() takes at most 4,300 digits.
            yield number, LineError(number, "", "holds a number with more than 4300 digits")
            continue
        if not isinstance(obj, dict):
            yield number, LineError(number, "", f"must be a JSON object, not {_type_name(obj)}")
            continue
        yield number, obj


def read_records(
    stream: BinaryIO, fmt: str = "auto", *, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, Record | list[LineError]]]:
    """(line number, record or its errors) for every non-blank line.

    With `auto`, the format is told from the first JSON object; when it fits none, that line is
    reported and reading stops (every later line would fail the same way).
    """
    if fmt not in IMPORT_FORMATS and fmt not in PARSERS:
        raise ValueError(f"unknown import format {fmt!r}; one of {', '.join(IMPORT_FORMATS)}")
    parse = PARSERS.get(fmt)
    for number, item in read_objects(stream, max_line_bytes=max_line_bytes):
        if isinstance(item, LineError):
            yield number, [item]
            continue
        if parse is None:
            detected = detect(item)
            if detected is None:
                yield number, [
                    LineError(
                        number,
                        "",
                        "cannot tell the format from this line's keys "
                        f"({', '.join(sorted(item)) or 'none'}); name it (format=…)",
                    )
                ]
                return
            parse = PARSERS[detected]
        try:
            yield number, parse(item)
        except RowError as exc:
            yield number, [LineError(number, field, message) for field, message in exc.problems]


def detect_stream(stream: BinaryIO) -> str | None:
    """The format of the first JSON object line, or None."""
    for _, item in read_objects(stream):
        if isinstance(item, dict):
            return detect(item)
    return None
