from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from prefs.charts import Interval, bar_chart, heat_map, interval_chart, nice_ticks


def _parse(svg: str) -> ET.Element:
    # Well-formed XML: a browser would render it, and every label was escaped.
    return ET.fromstring(svg)  # noqa: S314 (our own output, in a test)


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 10, 6) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.0, 1.0, 5) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(930, 1090, 5) == [950, 1000, 1050]
    assert nice_ticks(3, 3) == [3]


def test_bar_chart_draws_one_bar_per_point_with_a_tooltip():
    svg = bar_chart([("2025-01-01", 3), ("2025-01-02", 0), ("2025-01-03", 7)], title="Per day")
    root = _parse(svg)
    bars = root.findall("{http://www.w3.org/2000/svg}rect")
    assert len(bars) == 3
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0
    assert heights[2] / heights[0] == pytest.approx(7 / 3, rel=0.01)
    assert "2025-01-03: 7" in svg
    assert _parse(bar_chart([], title="Nothing yet")) is not None


def test_interval_chart_places_dots_and_bars_in_order():
    svg = interval_chart(
        [Interval("low", 0.2, 0.1, 0.3), Interval("high", 0.8, 0.7, 0.9, highlight=True)],
        title="Shares",
        reference=0.5,
        domain=(0.0, 1.0),
        percent=True,
    )
    root = _parse(svg)
    dots = root.findall(".//{http://www.w3.org/2000/svg}circle")
    assert [float(d.get("cx")) for d in dots] == sorted(float(d.get("cx")) for d in dots)
    assert "high: 80% (95% interval 70% to 90%)" in svg
    # A missing estimate draws no dot but keeps its row.
    svg = interval_chart([Interval("none yet", None, None, None)], title="Empty")
    assert "<circle" not in svg and "none yet" in svg


def test_heat_map_colours_wins_blue_losses_red_and_escapes_labels():
    svg = heat_map(
        ["<b>a</b>", "b"], [[None, 0.9], [0.1, None]], counts=[[0, 10], [10, 0]], title="Wins"
    )
    _parse(svg)
    assert "<b>a</b>" not in svg and "&lt;b&gt;a&lt;/b&gt;" in svg
    fills = re.findall(r'fill="(#[0-9a-f]{6})"/><text[^>]*>(\d+%)', svg)
    by_text = {text: fill for fill, text in fills}
    red, green, blue = (int(by_text["90%"][k : k + 2], 16) for k in (1, 3, 5))
    assert blue > red
    red, green, blue = (int(by_text["10%"][k : k + 2], 16) for k in (1, 3, 5))
    assert red > blue
    assert "of 10 comparisons" in svg
