"""Charts as inline SVG, drawn on the server: no script, nothing fetched from elsewhere.

Each function returns a complete `<svg>` element as a string with every text escaped; the
views mark it safe. Every chart carries a title for screen readers and a `<title>` tooltip per
mark, and the pages show the same numbers in a table beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

# Diverging heat-map colours (RGB): low share, even, high share.
_LOW = (192, 57, 43)
_MID = (247, 247, 247)
_HIGH = (47, 91, 211)
_EMPTY = "#e4e7ee"
_INK = "#1c2230"
_MUTED = "#5d6678"
_LINE = "#d9dde5"
_ACCENT = "#2f5bd3"


def _f(value: float) -> str:
    """Coordinates with one decimal: small markup, sub-pixel precise enough."""
    return f"{value:.1f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high], about `count` of them."""
    if not math.isfinite(low) or not math.isfinite(high):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


def _svg(
    width: float, height: float, title: str, body: list[str], css_class: str, *, fill: bool = True
) -> str:
    # Wide charts stretch to the page; a heat map keeps its natural size (cells stay square and
    # text stays readable) and only shrinks on narrow screens.
    size = 'width="100%"' if fill else f'width="{_f(width)}" height="{_f(height)}"'
    return (
        f'<svg class="chart {css_class}" viewBox="0 0 {_f(width)} {_f(height)}" '
        f'{size} role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def bar_chart(points: list[tuple[str, float]], *, title: str, unit: str = "") -> str:
    """Vertical bars, one per (label, value), e.g. judgments per day."""
    width, height = 960.0, 220.0
    left, right, top, bottom = 44.0, 10.0, 12.0, 28.0
    plot_w, plot_h = width - left - right, height - top - bottom
    body: list[str] = []
    top_value = max((v for _, v in points), default=0.0)
    ticks = nice_ticks(0.0, top_value if top_value > 0 else 1.0, 4)
    # One more round tick above the tallest bar, so the axis is labelled to the top.
    if len(ticks) >= 2 and ticks[-1] < top_value:
        ticks.append(ticks[-1] + (ticks[1] - ticks[0]))
    scale_max = max(ticks[-1], top_value, 1e-9)
    for tick in ticks:
        y = top + plot_h * (1 - tick / scale_max)
        body.append(
            f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{_LINE}"/>'
            f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" fill="{_MUTED}">'
            f"{escape(_label(tick))}</text>"
        )
    if points:
        slot = plot_w / len(points)
        gap = min(2.0, slot * 0.2)
        for k, (label, value) in enumerate(points):
            bar_h = plot_h * value / scale_max
            x = left + k * slot + gap / 2
            body.append(
                f'<rect x="{_f(x)}" y="{_f(top + plot_h - bar_h)}" width="{_f(slot - gap)}" '
                f'height="{_f(bar_h)}" fill="{_ACCENT}"><title>{escape(label)}: '
                f"{escape(_label(value))}{escape(unit)}</title></rect>"
            )
        # Dates under the first, middle and last bars keep the axis readable at any length.
        for k in sorted({0, len(points) // 2, len(points) - 1}):
            x = left + (k + 0.5) * slot
            anchor = "start" if k == 0 else ("end" if k == len(points) - 1 else "middle")
            if len(points) == 1:
                anchor = "middle"
            body.append(
                f'<text x="{_f(x)}" y="{_f(height - 8)}" text-anchor="{anchor}" '
                f'fill="{_MUTED}">{escape(points[k][0])}</text>'
            )
    body.append(
        f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(top + plot_h)}" '
        f'y2="{_f(top + plot_h)}" stroke="{_MUTED}"/>'
    )
    return _svg(width, height, title, body, "chart-bars")


@dataclass(frozen=True)
class Interval:
    label: str
    value: float | None
    low: float | None
    high: float | None
    # Shown in the tooltip after the numbers, e.g. "40 judgments".
    note: str = ""
    # Drawn in the warning colour (a flagged reviewer, say).
    highlight: bool = False


def interval_chart(
    rows: list[Interval],
    *,
    title: str,
    reference: float | None = None,
    domain: tuple[float, float] | None = None,
    percent: bool = False,
) -> str:
    """One row per item: a dot at the estimate and a bar across its interval."""
    row_h = 28.0
    label_w, right, top, bottom = 190.0, 16.0, 8.0, 30.0
    width = 960.0
    height = top + bottom + row_h * max(len(rows), 1)
    plot_w = width - label_w - right
    values = [
        x for r in rows for x in (r.value, r.low, r.high) if x is not None and math.isfinite(x)
    ]
    if reference is not None:
        values.append(reference)
    if domain is None:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = domain

    def x_of(value: float) -> float:
        return label_w + plot_w * (min(max(value, lo), hi) - lo) / (hi - lo)

    def fmt(value: float | None) -> str:
        if value is None:
            return "–"
        return (
            f"{value:.0%}" if percent else f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
        )

    body: list[str] = []
    axis_y = top + row_h * max(len(rows), 1)
    for tick in nice_ticks(lo, hi, 6):
        x = x_of(tick)
        body.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(axis_y)}" stroke="{_LINE}"/>'
            f'<text x="{_f(x)}" y="{_f(axis_y + 16)}" text-anchor="middle" fill="{_MUTED}">'
            f"{escape(fmt(tick))}</text>"
        )
    if reference is not None:
        x = x_of(reference)
        body.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(axis_y)}" '
            f'stroke="{_MUTED}" stroke-dasharray="4 3"/>'
        )
    for k, row in enumerate(rows):
        y = top + row_h * (k + 0.5)
        colour = "#b7791f" if row.highlight else _ACCENT
        tip = f"{row.label}: {fmt(row.value)} (95% interval {fmt(row.low)} to {fmt(row.high)})"
        if row.note:
            tip += f", {row.note}"
        body.append(
            f"<g><title>{escape(tip)}</title>"
            f'<text x="{_f(label_w - 8)}" y="{_f(y + 4)}" text-anchor="end" fill="{_INK}">'
            f"{escape(row.label[:28])}</text>"
        )
        if row.low is not None and row.high is not None:
            body.append(
                f'<line x1="{_f(x_of(row.low))}" x2="{_f(x_of(row.high))}" y1="{_f(y)}" '
                f'y2="{_f(y)}" stroke="{colour}" stroke-width="6" stroke-linecap="round" '
                f'opacity="0.35"/>'
            )
        if row.value is not None:
            body.append(f'<circle cx="{_f(x_of(row.value))}" cy="{_f(y)}" r="5" fill="{colour}"/>')
        body.append("</g>")
    return _svg(width, height, title, body, "chart-intervals")


def _mix(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    if share < 0.5:
        t, start, end = share / 0.5, _LOW, _MID
    else:
        t, start, end = (share - 0.5) / 0.5, _MID, _HIGH
    r, g, b = (round(s + (e - s) * t) for s, e in zip(start, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(
    labels: list[str],
    values: list[list[float | None]],
    *,
    title: str,
    counts: list[list[int]] | None = None,
    percent: bool = True,
    centre: float = 0.5,
    spread: float = 0.5,
) -> str:
    """A square matrix of shares: blue above `centre`, red below, grey where empty.

    `values[i][j]` is row i against column j; `counts` (same shape) goes into the tooltips.
    Values are mapped so that centre ± spread reach the full colours.
    """
    size = len(labels)
    cell = 46.0 if size <= 12 else 30.0
    longest = max((len(label[:20]) for label in labels), default=0)
    label_w = 16.0 + 7.0 * min(max((len(label[:22]) for label in labels), default=0), 22)
    # Column labels are turned 45°: their height is about 0.7 × their length.
    top = 16.0 + 7.0 * 0.71 * longest
    width = label_w + cell * size + 10
    height = top + cell * size + 10
    body: list[str] = []
    for j, label in enumerate(labels):
        x = label_w + cell * (j + 0.5)
        body.append(
            f'<text transform="translate({_f(x)} {_f(top - 6)}) rotate(-45)" fill="{_INK}">'
            f"{escape(label[:20])}</text>"
        )
    for i, row_label in enumerate(labels):
        y = top + cell * i
        body.append(
            f'<text x="{_f(label_w - 6)}" y="{_f(y + cell / 2 + 4)}" text-anchor="end" '
            f'fill="{_INK}">{escape(row_label[:22])}</text>'
        )
        for j in range(size):
            x = label_w + cell * j
            value = values[i][j]
            games = counts[i][j] if counts is not None else None
            if i == j or value is None:
                fill, text = _EMPTY, "" if i == j else "–"
                tip = f"{row_label} vs {labels[j]}: no comparisons" if i != j else row_label
            else:
                fill = _mix(0.5 + (value - centre) / (2 * spread))
                text = f"{value:.0%}" if percent else f"{value:.2f}"
                tip = f"{row_label} vs {labels[j]}: {text}"
                if games is not None:
                    tip += f" of {games} comparisons"
            ink = (
                "#fff"
                if value is not None and i != j and abs(value - centre) > 0.6 * spread
                else _INK
            )
            body.append(
                f"<g><title>{escape(tip)}</title>"
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(cell - 2)}" height="{_f(cell - 2)}" '
                f'rx="3" fill="{fill}"/>'
                f'<text x="{_f(x + cell / 2 - 1)}" y="{_f(y + cell / 2 + 4)}" '
                f'text-anchor="middle" fill="{ink}" font-size="11">{escape(text)}</text></g>'
            )
    return _svg(width, height, title, body, "chart-heat", fill=False)
