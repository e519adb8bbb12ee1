"""The normalised records every import codec yields and every export codec reads.

Pure data: no Django. A codec turns one decoded JSON object into one record, or raises
`RowError` with every problem it found as (field, message); the reader adds the line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
SPLITS = ("train", "heldout")
# 0: the first response won, 1: the second, or a verdict about both; None: still to review.
PREFERENCES = (0, 1, "tie", "both_bad", None)
DEFAULT_SOURCE = "imported"


class RowError(Exception):
    """One row that cannot be imported, with every (field, message) problem found in it."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class LineError:
    # None for a problem with the whole file (not valid gzip, no rows).
    line: int | None
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class Response:
    text: str
    source: str = DEFAULT_SOURCE


@dataclass(frozen=True, slots=True)
class PairRecord:
    """A prompt and two responses, with the preference between them if the row carries one."""

    prompt: list[dict]
    a: Response
    b: Response
    preference: int | str | None = None
    split: str = "train"
    external_id: str = ""
    # 1-3, the imported label's strength; None when the row gives none.
    strength: int | None = None
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PromptRecord:
    messages: list[dict]
    split: str = "train"
    external_id: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    """An output for a prompt that is already in the project, found by its external id."""

    prompt_external_id: str
    text: str
    source: str = DEFAULT_SOURCE


Record = PairRecord | PromptRecord | CandidateRecord


@dataclass(frozen=True, slots=True)
class ExportPair:
    """One pair of a frozen preference set, as the export codecs read it."""

    prompt: list[dict]
    chosen: str
    rejected: str
    # "preferred", "tie" (order means nothing) or "both_bad" (both are negatives).
    kind: str = "preferred"
    weight: float = 1.0
    chosen_source: str = DEFAULT_SOURCE
    rejected_source: str = DEFAULT_SOURCE
    split: str = "train"
    external_id: str = ""


class Problems:
    """Collects (field, message) while a codec checks a row, then raises them all at once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field_name: str, message: str) -> None:
        self.items.append((field_name, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise RowError(self.items)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def unstorable(value: str) -> str | None:
    """Why a database cannot store this text (JSON can spell both), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which the database cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (a lone \\ud800-\\udfff escape), which is not text"
    return None


def text_field(obj: dict, key: str, problems: Problems, *, name: str | None = None,
               allow_empty: bool = False, required: bool = True) -> str | None:
    """The text under `key`, or None after noting why it is unusable."""
    name = name or key
    if key not in obj:
        if required:
            problems.add(name, "is missing")
        return None
    value = obj[key]
    if not isinstance(value, str):
        problems.add(name, f"must be text, not {_type_name(value)}")
        return None
    if not allow_empty and not value.strip():
        problems.add(name, "is empty")
        return None
    if reason := unstorable(value):
        problems.add(name, reason)
        return None
    return value


def label_field(value, name: str, problems: Problems) -> str | None:
    """A short label (a source): text of at most 200 characters."""
    if not isinstance(value, str) or len(value) > 200:
        problems.add(name, "must be text of at most 200 characters")
        return None
    if reason := unstorable(value):
        problems.add(name, reason)
        return None
    return value


def messages_field(value: Any, name: str, problems: Problems, *, last_role: str | None = "user",
                   roles: tuple[str, ...] = ROLES) -> list[dict] | None:
    """A checked list of {"role", "content"} messages (other keys dropped), or None."""
    if isinstance(value, str):
        if not value.strip():
            problems.add(name, "is empty")
            return None
        if reason := unstorable(value):
            problems.add(name, reason)
            return None
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        problems.add(name, f"must be a list of messages or text, not {_type_name(value)}")
        return None
    if not value:
        problems.add(name, "is an empty list of messages")
        return None
    out: list[dict] = []
    ok = True
    for index, message in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(message, dict):
            problems.add(where, f"must be an object with role and content, not {_type_name(message)}")
            ok = False
            continue
        role = message.get("role")
        if role not in roles:
            problems.add(f"{where}.role", f"must be one of {', '.join(roles)}, not {role!r}")
            ok = False
        content = text_field(message, "content", problems, name=f"{where}.content")
        if content is None:
            ok = False
        out.append({"role": role, "content": content})
    if ok and last_role and out[-1]["role"] != last_role:
        problems.add(f"{name}[{len(out) - 1}].role",
                     f"the last message must be a {last_role} turn, not {out[-1]['role']!r}")
        ok = False
    return out if ok else None


def assistant_text(value: Any, name: str, problems: Problems) -> str | None:
    """A response given as text or as a list holding exactly one assistant message."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if len(value) != 1:
            roles = [m.get("role") if isinstance(m, dict) else _type_name(m) for m in value]
            problems.add(name, f"must be exactly one assistant message, found {len(value)} ({roles})")
            return None
        message = value[0]
        if not isinstance(message, dict):
            problems.add(f"{name}[0]", f"must be an object with role and content, not {_type_name(message)}")
            return None
        if message.get("role") != "assistant":
            problems.add(f"{name}[0].role", f"must be 'assistant', not {message.get('role')!r}")
            return None
        return text_field(message, "content", problems, name=f"{name}[0].content", allow_empty=True)
    problems.add(name, f"must be text or a list with one assistant message, not {_type_name(value)}")
    return None


def check_responses(a: str | None, b: str | None, names: tuple[str, str], problems: Problems) -> None:
    # One empty response is real data (Anthropic HH has replies where the assistant said
    # nothing, and raters judged them); two empty or two identical ones make no comparison.
    if a is None or b is None:
        return
    for name, text in zip(names, (a, b), strict=True):
        if reason := unstorable(text):
            problems.add(name, reason)
            return
    if not a.strip() and not b.strip():
        problems.add(names[0], f"{names[0]} and {names[1]} are both empty")
    elif a == b:
        problems.add(names[1], f"is the same text as {names[0]}")


def split_field(obj: dict, problems: Problems) -> str:
    value = obj.get("split", "train")
    if value is None:
        return "train"
    if value not in SPLITS:
        problems.add("split", f"must be one of {', '.join(SPLITS)}, not {value!r}")
        return "train"
    return value


def id_field(obj: dict, problems: Problems, *, required: bool = False) -> str:
    value = obj.get("id")
    if value is None or value == "":
        if required:
            problems.add("id", "is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.add("id", f"must be text or a number, not {_type_name(value)}")
        return ""
    value = str(value)
    if len(value) > 200:
        problems.add("id", "must be at most 200 characters")
        return ""
    if reason := unstorable(value):
        problems.add("id", reason)
        return ""
    return value


def tags_field(obj: dict, problems: Problems) -> list[str]:
    value = obj.get("tags", [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) and not unstorable(t) for t in value):
        problems.add("tags", "must be a list of text")
        return []
    return value


def strength_from(obj: dict, problems: Problems) -> int | None:
    """An explicit strength 1-3, else one derived from an exported weight in (0, 1]."""
    if "strength" in obj and obj["strength"] is not None:
        value = obj["strength"]
        if isinstance(value, bool) or value not in (1, 2, 3):
            problems.add("strength", f"must be 1, 2 or 3, not {value!r}")
            return None
        return int(value)
    weight = obj.get("weight")
    # Exports write weight = mean strength / 3, so a weight maps back to the nearest strength.
    if isinstance(weight, int | float) and not isinstance(weight, bool) and 0 < weight <= 1:
        return max(1, min(3, round(weight * 3)))
    return None
