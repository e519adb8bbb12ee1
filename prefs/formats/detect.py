"""Telling an import file's format from its first object (the `auto` format)."""

from __future__ import annotations

from prefs.formats import hh


def detect(obj: dict) -> str | None:
    """The import format `obj` looks like, or None when it fits none."""
    if "responses" in obj:
        return "native"
    if "input" in obj and ("preferred_output" in obj or "non_preferred_output" in obj):
        return "openai"
    if "chosen" in obj or "rejected" in obj:
        if "prompt" not in obj and hh.looks_like_transcript(obj.get("chosen")):
            return "hh"
        return "trl"
    if "text" in obj and "id" in obj:
        return "candidates"
    if "prompt" in obj or "messages" in obj:
        return "prompts"
    return None
