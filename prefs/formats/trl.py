"""TRL preference rows, in TRL's four shapes.

- standard, explicit prompt: {"prompt": "…", "chosen": "…", "rejected": "…"}
- standard, implicit prompt: {"chosen": "…", "rejected": "…"} (TRL's `extract_prompt`: the
  longest shared prefix, backed off a trailing space)
- conversational, explicit: {"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}
- conversational, implicit: {"chosen": [messages…, assistant], "rejected": [...]}: the shared
  messages up to the last shared user turn are the prompt; what follows must be one assistant
  message on each side.

Standard text whose prompt is an HH transcript ("\\n\\nHuman: …\\n\\nAssistant:") is split into
messages, which is also how the `trl` export writes multi-role prompts; an optional `weight` in
(0, 1] becomes the imported label's strength.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefs.formats import hh
from prefs.formats.records import (
    ExportPair,
    PairRecord,
    Problems,
    Response,
    _type_name,
    assistant_text,
    check_responses,
    messages_field,
    strength_from,
    unstorable,
)

NAME = "trl"
CONVERSATIONAL = "trl-conversational"


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def _implicit_conversational(chosen: list, rejected: list, problems: Problems):
    full_c = messages_field(chosen, "chosen", problems, last_role="assistant")
    full_r = messages_field(rejected, "rejected", problems, last_role="assistant")
    if full_c is None or full_r is None:
        return None, None, None
    shared = 0
    for mc, mr in zip(full_c, full_r, strict=False):
        if mc != mr:
            break
        shared += 1
    last_user = max((i for i in range(shared) if full_c[i]["role"] == "user"), default=-1)
    if last_user < 0:
        problems.add("chosen", "shares no user turn with rejected: no prompt to extract")
        return None, None, None
    texts = []
    for name, full in (("chosen", full_c), ("rejected", full_r)):
        rest = full[last_user + 1 :]
        if len(rest) != 1 or rest[0]["role"] != "assistant":
            problems.add(
                name,
                "after the shared prompt there must be exactly one assistant message, found "
                f"{[m['role'] for m in rest]}",
            )
            return None, None, None
        texts.append(rest[0]["content"])
    return full_c[: last_user + 1], texts[0], texts[1]


def _implicit_standard(chosen: str, rejected: str, problems: Problems):
    # TRL's extract_prompt: the shared character prefix, minus a space right before the split.
    index = 0
    for index in range(min(len(chosen), len(rejected))):  # noqa: B007
        if chosen[index] != rejected[index]:
            if chosen[index - 1] == " ":
                index -= 1
            break
    prompt = chosen[:index]
    if not prompt.strip():
        problems.add("chosen", "shares no prompt text with rejected; give a 'prompt' field")
        return None, None, None
    return [{"role": "user", "content": prompt}], chosen[index:], rejected[index:]


def _standard_with_prompt(prompt: str, chosen: str, rejected: str, problems: Problems):
    if hh.looks_like_transcript(prompt):
        stripped = prompt[: -len("\n\nAssistant:")] if prompt.endswith("\n\nAssistant:") else None
        if stripped is None:
            problems.add("prompt", "an HH-style prompt must end with '\\n\\nAssistant:'")
            return None, None, None
        preamble, turns = hh.parse_transcript(stripped)
        # The completions follow the marker, so one leading space belongs to it.
        texts = [t[1:] if t.startswith(" ") else t for t in (chosen, rejected)]
        out = [{"role": "system", "content": preamble}] if preamble.strip() else []
        out += [{"role": t.role, "content": t.content} for t in turns]
        if not out or out[-1]["role"] != "user":
            problems.add("prompt", "the last turn before '\\n\\nAssistant:' must be a Human turn")
            return None, None, None
        if any(not m["content"].strip() for m in out):
            problems.add("prompt", "has an empty turn")
            return None, None, None
        return out, texts[0], texts[1]
    if not prompt.strip():
        problems.add("prompt", "is empty")
        return None, None, None
    return [{"role": "user", "content": prompt}], chosen, rejected


def parse(obj: dict) -> PairRecord:
    problems = Problems()
    for key in ("chosen", "rejected"):
        if key not in obj:
            problems.add(key, "is missing")
    problems.raise_if_any()
    chosen, rejected, prompt = obj["chosen"], obj["rejected"], obj.get("prompt")
    if _is_messages(chosen) and _is_messages(rejected) and not _is_messages(prompt):
        # Conversational rows with an implicit prompt (a text `prompt` next to full
        # conversations is redundant, as TRL's maybe_extract_prompt also assumes).
        messages, text_c, text_r = _implicit_conversational(chosen, rejected, problems)
    elif prompt is None and isinstance(chosen, str) and isinstance(rejected, str):
        if hh.looks_like_transcript(chosen):
            messages, text_c, text_r = hh.split_pair(chosen, rejected, problems)
        else:
            messages, text_c, text_r = _implicit_standard(chosen, rejected, problems)
    elif prompt is None:
        problems.add("prompt", "is missing, and chosen/rejected are not both full conversations")
        messages = text_c = text_r = None
    elif isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        if reason := unstorable(prompt):
            problems.add("prompt", reason)
            problems.raise_if_any()
        messages, text_c, text_r = _standard_with_prompt(prompt, chosen, rejected, problems)
    elif isinstance(prompt, list | str):
        messages = messages_field(prompt, "prompt", problems)
        text_c = assistant_text(chosen, "chosen", problems)
        text_r = assistant_text(rejected, "rejected", problems)
    else:
        problems.add("prompt", f"must be text or a list of messages, not {_type_name(prompt)}")
        messages = text_c = text_r = None
    problems.raise_if_any()
    check_responses(text_c, text_r, ("chosen", "rejected"), problems)
    strength = strength_from(obj, problems)
    problems.raise_if_any()
    return PairRecord(
        prompt=messages, a=Response(text_c), b=Response(text_r), preference=0, strength=strength
    )


def prompt_text(messages: list[dict]) -> str:
    """A prompt as one text: HH-style turns ending in the assistant marker."""
    return hh.render_transcript(messages) + "\n\nAssistant:"


def rows(pair: ExportPair) -> Iterator[dict]:
    from prefs.formats.export import oriented

    prompt = prompt_text(pair.prompt)
    for chosen, rejected, weight in oriented(pair):
        yield {"prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected, "weight": weight}


def conversational_rows(pair: ExportPair) -> Iterator[dict]:
    from prefs.formats.export import oriented

    for chosen, rejected, weight in oriented(pair):
        yield {
            "prompt": pair.prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "weight": weight,
        }
