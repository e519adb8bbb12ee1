"""Small formatting filters of the tuning pages."""

from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """12.3 -> "12 s", 200 -> "3 min 20 s", 7300 -> "2 h 1 min"; "" for none."""
    if seconds is None or seconds == "":
        return ""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@register.filter
def percent(value, digits: int = 0) -> str:
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def number(value, digits: int = 3) -> str:
    if value is None or value == "":
        return "–"
    try:
        return f"{float(value):.{int(digits)}g}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def filesize(value) -> str:
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.filter
def get(mapping, key):
    return mapping.get(key) if isinstance(mapping, dict) else None
