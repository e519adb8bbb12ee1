"""Training curves as inline SVG, drawn on the server (no script, nothing fetched elsewhere)."""

from __future__ import annotations

import math
from html import escape

from prefs.charts import nice_ticks

_INK = "#1c2230"
_MUTED = "#5d6678"
_LINE = "#d9dde5"
_ACCENT = "#2f5bd3"
# Most points drawn per curve; longer runs are thinned evenly (the last point always stays).
MAX_POINTS = 400


def _f(value: float) -> str:
    return f"{value:.1f}"


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3g}"


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = len(points) / (limit - 1)
    picked = [points[min(int(k * stride), len(points) - 1)] for k in range(limit - 1)]
    return [*picked, points[-1]]


def line_chart(
    points: list[tuple[int, float]],
    *,
    title: str,
    domain: tuple[float, float] | None = None,
    reference: float | None = None,
) -> str:
    """A metric against the step: one polyline, labelled axes, the last value in the title."""
    width, height = 480.0, 200.0
    left, right, top, bottom = 48.0, 12.0, 14.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [(s, v) for s, v in points if math.isfinite(v)]
    body: list[str] = []
    label = title
    if points:
        label = f"{title}: {_fmt(points[-1][1])} at step {points[-1][0]}"
    if domain is None:
        values = [v for _, v in points] + ([reference] if reference is not None else [])
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = domain
    first = points[0][0] if points else 0
    last = points[-1][0] if points else 1
    span = max(last - first, 1)

    def x_of(step: float) -> float:
        return left + plot_w * (step - first) / span

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (min(max(value, lo), hi) - lo) / (hi - lo))

    for tick in nice_ticks(lo, hi, 4):
        y = y_of(tick)
        body.append(
            f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(y)}" y2="{_f(y)}" stroke="{_LINE}"/>'
            f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" fill="{_MUTED}">{escape(_fmt(tick))}</text>'
        )
    if reference is not None:
        y = y_of(reference)
        body.append(
            f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{_MUTED}" stroke-dasharray="4 3"/>'
        )
    body.append(
        f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(top + plot_h)}" y2="{_f(top + plot_h)}" stroke="{_MUTED}"/>'
        f'<text x="{_f(left)}" y="{_f(height - 8)}" fill="{_MUTED}">step {first}</text>'
        f'<text x="{_f(width - right)}" y="{_f(height - 8)}" text-anchor="end" fill="{_MUTED}">step {last}</text>'
    )
    drawn = thin(points)
    if len(drawn) == 1:
        step, value = drawn[0]
        body.append(f'<circle cx="{_f(x_of(step))}" cy="{_f(y_of(value))}" r="3" fill="{_ACCENT}"/>')
    elif drawn:
        coords = " ".join(f"{_f(x_of(s))},{_f(y_of(v))}" for s, v in drawn)
        body.append(f'<polyline points="{coords}" fill="none" stroke="{_ACCENT}" stroke-width="2"/>')
    else:
        body.append(
            f'<text x="{_f(left + plot_w / 2)}" y="{_f(top + plot_h / 2)}" text-anchor="middle" '
            f'fill="{_MUTED}">no steps yet</text>'
        )
    return (
        f'<svg class="chart chart-line" viewBox="0 0 {_f(width)} {_f(height)}" width="100%" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="12"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )
