"""Anthropic HH transcripts: {"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": "…"}.

Import: both transcripts are cut into turns at the `\\n\\nHuman:` / `\\n\\nAssistant:` markers;
the prompt is the turns both share, up to and including the last shared human turn (multi-turn
kept as messages); each response is the rest of its transcript after the next `Assistant:`
marker, exactly as written (one space after the marker is part of the marker). Text before the
first marker, if any, is a system message. The chosen transcript won.

Export writes the same transcripts back, so an HH file survives import and export byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from prefs.formats.records import (
    ExportPair,
    PairRecord,
    Problems,
    Response,
    check_responses,
    text_field,
)

NAME = "hh"
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}
_LABEL = {"user": "Human", "assistant": "Assistant"}


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str
    # Offsets into the transcript: where the marker starts and where the content ends.
    start: int
    end: int


def looks_like_transcript(text: object) -> bool:
    return isinstance(text, str) and (
        text.startswith(("Human:", "\n\nHuman:")) or "\n\nHuman:" in text[:4096]
    )


def parse_transcript(text: str) -> tuple[str, list[Turn]]:
    """(system preamble, turns). A transcript may start with `Human:` without the newlines."""
    matches = []
    for label in ("Human:", "Assistant:"):
        if text.startswith(label):
            matches.append((0, len(label), label[:-1]))
    matches += [(m.start(), m.end(), m.group(1)) for m in _MARKER.finditer(text)]
    preamble = text[: matches[0][0]] if matches else text
    turns = []
    for index, (start, content_start, label) in enumerate(matches):
        end = matches[index + 1][0] if index + 1 < len(matches) else len(text)
        if content_start < end and text[content_start] == " ":
            content_start += 1
        turns.append(Turn(_ROLE[label], text[content_start:end], start, end))
    return preamble, turns


def render_transcript(messages: list[dict], response: str | None = None) -> str:
    """The HH transcript of `messages`, followed by an assistant turn when `response` is given."""
    parts = []
    for message in messages:
        if message["role"] == "system":
            parts.append(message["content"])
        else:
            parts.append(f"\n\n{_LABEL[message['role']]}: {message['content']}")
    if response is not None:
        parts.append(f"\n\nAssistant: {response}")
    return "".join(parts)


def split_pair(chosen: str, rejected: str, problems: Problems, *, names=("chosen", "rejected")):
    """(prompt messages, chosen response, rejected response) from two transcripts, or Nones."""
    pre_c, turns_c = parse_transcript(chosen)
    pre_r, turns_r = parse_transcript(rejected)
    if not turns_c or not turns_r:
        problems.add(names[0] if not turns_c else names[1],
                     "has no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
        return None, None, None
    if pre_c != pre_r:
        problems.add(names[1], "starts with different text before the first turn than chosen")
        return None, None, None
    shared = 0
    for tc, tr in zip(turns_c, turns_r, strict=False):
        if (tc.role, tc.content) != (tr.role, tr.content):
            break
        shared += 1
    last_human = max((i for i in range(shared) if turns_c[i].role == "user"), default=-1)
    if last_human < 0:
        problems.add(names[0], "shares no human turn with the rejected transcript: no prompt to split off")
        return None, None, None
    responses = []
    for name, text, turns in ((names[0], chosen, turns_c), (names[1], rejected, turns_r)):
        rest_at = last_human + 1
        if rest_at >= len(turns) or turns[rest_at].role != "assistant":
            problems.add(name, "must continue with an '\\n\\nAssistant:' turn after the shared prompt")
            return None, None, None
        responses.append(text[turns[rest_at].end - len(turns[rest_at].content) :])
    messages = []
    if pre_c.strip():
        messages.append({"role": "system", "content": pre_c})
    messages += [{"role": t.role, "content": t.content} for t in turns_c[: last_human + 1]]
    for index, message in enumerate(messages):
        if not message["content"].strip():
            problems.add(names[0], f"turn {index + 1} of the shared prompt is empty")
            return None, None, None
    return messages, responses[0], responses[1]


def parse(obj: dict) -> PairRecord:
    problems = Problems()
    chosen = text_field(obj, "chosen", problems)
    rejected = text_field(obj, "rejected", problems)
    problems.raise_if_any()
    messages, text_c, text_r = split_pair(chosen, rejected, problems)
    problems.raise_if_any()
    check_responses(text_c, text_r, ("chosen", "rejected"), problems)
    problems.raise_if_any()
    return PairRecord(prompt=messages, a=Response(text_c), b=Response(text_r), preference=0)


def rows(pair: ExportPair) -> Iterator[dict]:
    # HH has no weight column; a kept tie is written in both orders (see prefs.formats.export).
    from prefs.formats.export import oriented

    for chosen, rejected, _weight in oriented(pair):
        yield {
            "chosen": render_transcript(pair.prompt, chosen),
            "rejected": render_transcript(pair.prompt, rejected),
        }
