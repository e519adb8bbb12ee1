"""Prompts only: {"prompt": [messages] | "text", "id": "external id", "split": …, "tags": [...]}.

`messages` is accepted in place of `prompt`. Prompts arrive without responses: candidates for
them come later (the `candidates` format, or generation jobs).
"""

from __future__ import annotations

from prefs.formats.records import (
    Problems,
    PromptRecord,
    id_field,
    messages_field,
    split_field,
    tags_field,
)

NAME = "prompts"


def parse(obj: dict) -> PromptRecord:
    problems = Problems()
    key = "prompt" if "prompt" in obj else "messages"
    messages = None
    if key not in obj:
        problems.add("prompt", "is missing")
    else:
        messages = messages_field(obj[key], key, problems)
    split = split_field(obj, problems)
    external_id = id_field(obj, problems)
    tags = tags_field(obj, problems)
    problems.raise_if_any()
    return PromptRecord(messages=messages, split=split, external_id=external_id, tags=tags)
