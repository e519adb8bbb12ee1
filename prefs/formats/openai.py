"""OpenAI preference fine-tuning (DPO) rows.

    {"input": {"messages": [...], "tools": [], "parallel_tool_calls": true},
     "preferred_output": [{"role": "assistant", "content": "…"}],
     "non_preferred_output": [{"role": "assistant", "content": "…"}]}

The context goes out as given (system, earlier turns, ending on the user turn); each output is
one assistant message. The format has no place for a weight, so none is written.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefs.formats.records import (
    ExportPair,
    PairRecord,
    Problems,
    Response,
    _type_name,
    assistant_text,
    check_responses,
    messages_field,
)

NAME = "openai"


def parse(obj: dict) -> PairRecord:
    problems = Problems()
    messages = None
    if "input" not in obj:
        problems.add("input", "is missing")
    elif not isinstance(obj["input"], dict):
        problems.add("input", f"must be an object with messages, not {_type_name(obj['input'])}")
    elif "messages" not in obj["input"]:
        problems.add("input.messages", "is missing")
    else:
        messages = messages_field(obj["input"]["messages"], "input.messages", problems)
        if isinstance(obj["input"]["messages"], str):
            problems.add("input.messages", "must be a list of messages")
    texts = []
    for key in ("preferred_output", "non_preferred_output"):
        if key not in obj:
            problems.add(key, "is missing")
            texts.append(None)
        elif not isinstance(obj[key], list):
            problems.add(key, f"must be a list with one assistant message, not {_type_name(obj[key])}")
            texts.append(None)
        else:
            texts.append(assistant_text(obj[key], key, problems))
    problems.raise_if_any()
    check_responses(texts[0], texts[1], ("preferred_output", "non_preferred_output"), problems)
    problems.raise_if_any()
    return PairRecord(prompt=messages, a=Response(texts[0]), b=Response(texts[1]), preference=0)


def rows(pair: ExportPair) -> Iterator[dict]:
    from prefs.formats.export import oriented

    for chosen, rejected, _weight in oriented(pair):
        yield {
            "input": {"messages": pair.prompt, "tools": [], "parallel_tool_calls": True},
            "preferred_output": [{"role": "assistant", "content": chosen}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}],
        }
