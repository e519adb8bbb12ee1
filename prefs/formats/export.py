"""Writing a preference set's pairs in each export format, as a stream of bytes.

Pairwise formats (trl, trl-conversational, openai, hh, parquet) write a decided pair once,
winner as `chosen`. A kept tie is written in both orders at half weight each: under a
Bradley-Terry style loss the two rows pull the reward margin towards zero, which is what a tie
says. Kept both-bad pairs appear only where negatives mean something (kto, native).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

from prefs.formats import hh, kto, native, openai, parquet, trl
from prefs.formats.records import ExportPair

ROWS: dict[str, Callable[[ExportPair], Iterable[dict]]] = {
    "trl": trl.rows,
    "trl-conversational": trl.conversational_rows,
    "kto": kto.rows,
    "openai": openai.rows,
    "hh": hh.rows,
    "native": native.rows,
    "parquet": trl.conversational_rows,
}
JSONL_FORMATS = ("trl", "trl-conversational", "kto", "openai", "hh", "native")
EXPORT_FORMATS = (*JSONL_FORMATS, "parquet")
# Bytes gathered before a chunk goes out: big enough that per-chunk overhead vanishes, small
# enough to keep memory flat.
CHUNK_BYTES = 256 * 1024

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def oriented(pair: ExportPair) -> list[tuple[str, str, float]]:
    """(chosen, rejected, weight) rows a pair gives in a pairwise format."""
    if pair.kind == "preferred":
        return [(pair.chosen, pair.rejected, pair.weight)]
    if pair.kind == "tie":
        half = pair.weight / 2
        return [(pair.chosen, pair.rejected, half), (pair.rejected, pair.chosen, half)]
    return []


def _trl_lines(pair: ExportPair) -> list[str]:
    # The hot path of the most used format, written out by hand: byte for byte what
    # `_encode(row)` gives for trl.rows (a test holds the two together), at a fraction of
    # the cost of building and encoding a dict per row.
    prompt = _string(trl.prompt_text(pair.prompt))
    return [
        f'{{"prompt":{prompt},"chosen":{_string(" " + chosen)},"rejected":'
        f'{_string(" " + rejected)},"weight":{_float(weight)}}}\n'
        for chosen, rejected, weight in oriented(pair)
    ]


def _conversational_lines(pair: ExportPair) -> list[str]:
    prompt = _encode(pair.prompt)
    return [
        f'{{"prompt":{prompt},"chosen":[{{"role":"assistant","content":{_string(chosen)}}}],'
        f'"rejected":[{{"role":"assistant","content":{_string(rejected)}}}],"weight":{_float(weight)}}}\n'
        for chosen, rejected, weight in oriented(pair)
    ]


def _generic_lines(fmt: str) -> Callable[[ExportPair], list[str]]:
    make = ROWS[fmt]
    return lambda pair: [_encode(row) + "\n" for row in make(pair)]


_string = json.encoder.encode_basestring


def _float(value) -> str:
    return float.__repr__(value) if type(value) is float else _encode(value)


LINES: dict[str, Callable[[ExportPair], list[str]]] = {
    fmt: _generic_lines(fmt) for fmt in JSONL_FORMATS
}
LINES["trl"] = _trl_lines
LINES["trl-conversational"] = _conversational_lines


def lines(pairs: Iterable[ExportPair], fmt: str) -> Iterator[str]:
    """The JSONL lines of `fmt` for `pairs`, newline included."""
    make = LINES[fmt]
    for pair in pairs:
        yield from make(pair)


def rows(pairs: Iterable[ExportPair], fmt: str) -> Iterator[dict]:
    make = ROWS[fmt]
    for pair in pairs:
        yield from make(pair)


def jsonl_lines(row_iter: Iterable[dict]) -> Iterator[str]:
    for row in row_iter:
        yield _encode(row) + "\n"


# A prompt of one user turn, as PostgreSQL writes jsonb as text and Django's json.dumps writes it
# on SQLite: the content's JSON escapes sit between these two.
_ONE_USER_TURN = ('[{"role": "user", "content": "', '"}]')


def trl_prompt(messages_json: str) -> str:
    """The `trl` prompt text, JSON-encoded, from the prompt's messages given as JSON text.

    The common prompt, one user turn, is cut out of the text as it stands: its content is
    already JSON-escaped, and when it holds no quote, no \\u escape and no \\/ the escapes
    left (\\\\ \\b \\f \\n \\r \\t) are the ones `_string` writes, so the result is byte for byte
    `_string(trl.prompt_text(json.loads(messages_json)))`. Anything else takes that long way.
    """
    head, tail = _ONE_USER_TURN
    if messages_json.startswith(head) and messages_json.endswith(tail):
        content = messages_json[len(head) : -len(tail)]
        # (One-character searches are memchr; the two-character ones run only after a backslash.)
        if '"' not in content and (
            "\\" not in content or ("\\u" not in content and "\\/" not in content)
        ):
            return '"\\n\\nHuman: ' + content + '\\n\\nAssistant:"'
    return _string(trl.prompt_text(json.loads(messages_json)))


def trl_stream(rows: Iterable[tuple], *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The `trl` export, in UTF-8 chunks, from (messages JSON text, chosen, rejected, kind,
    weight) rows: what `stream(pairs, "trl")` writes for the same pairs, at a fraction of the
    cost per row (no ExportPair, no JSON parsing of the common prompt)."""
    return chunked(_trl_row_lines(rows), chunk_bytes=chunk_bytes)


def _trl_row_lines(rows: Iterable[tuple]) -> Iterator[str]:
    string = _string
    last_messages = prompt = None
    # A float's shortest repr costs about a microsecond, and a set has few distinct weights
    # (mean strengths / 3): each is written once, then looked up. Floats only, never zero
    # (0.0 and -0.0 are one key), and at most 256 of them, so memory stays flat.
    weights: dict[float, str] = {}
    for messages, chosen, rejected, kind, weight in rows:
        # Pairs of one prompt usually come one after another: its text is made once.
        if messages != last_messages:
            prompt = trl_prompt(messages)
            last_messages = messages
        if kind == "tie":
            weight = weight / 2
        elif kind != "preferred":
            continue
        if type(weight) is not float:
            written = _float(weight)
        elif (written := weights.get(weight)) is None:
            written = float.__repr__(weight)
            if weight and len(weights) < 256:
                weights[weight] = written
        a, b = string(" " + chosen), string(" " + rejected)
        if kind == "preferred":
            yield f'{{"prompt":{prompt},"chosen":{a},"rejected":{b},"weight":{written}}}\n'
        else:
            yield (f'{{"prompt":{prompt},"chosen":{a},"rejected":{b},"weight":{written}}}\n'
                   f'{{"prompt":{prompt},"chosen":{b},"rejected":{a},"weight":{written}}}\n')


def chunked(lines: Iterable[str], *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """UTF-8 chunks of about `chunk_bytes` (characters, roughly) each."""
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= chunk_bytes:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
            size = 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def stream(pairs: Iterable[ExportPair], fmt: str, *, metadata: dict | None = None) -> Iterator[bytes]:
    """The bytes of an export file in `fmt`. Parquet carries `metadata` in its schema."""
    if fmt == "parquet":
        return parquet.stream(rows(pairs, fmt), metadata=metadata or {})
    if fmt not in JSONL_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    return chunked(lines(pairs, fmt))
