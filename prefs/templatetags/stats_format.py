"""Number formats for the stats pages; a missing number shows as a dash."""

from __future__ import annotations

from django import template

register = template.Library()

DASH = "–"


@register.filter
def pct(value, digits: int = 0) -> str:
    """0.734 → "73%"."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def num(value, digits: int = 2) -> str:
    """A plain number with `digits` decimals."""
    if value is None:
        return DASH
    return f"{float(value):.{int(digits)}f}"


@register.filter
def pvalue(value) -> str:
    """p-values: two significant digits, tiny ones as "< 0.0001"."""
    if value is None:
        return DASH
    value = float(value)
    return "< 0.0001" if value < 1e-4 else f"{value:.2g}"


@register.filter
def seconds(value) -> str:
    """Milliseconds shown as seconds: 12500 → "12.5 s"."""
    if value is None:
        return DASH
    return f"{float(value) / 1000:.1f} s"
