from __future__ import annotations

import pytest

from prefs.rendering import render_markdown, visible_bidi
from tests.hostile import XSS_PAYLOADS, assert_inert


def test_markdown_keeps_code_blocks_lists_and_emphasis():
    html = render_markdown("Use **this**:\n\n- one\n- two\n\n```python\nprint('<b>')\n```")
    assert "<strong>this</strong>" in html
    assert "<li>one</li>" in html
    assert '<pre><code class="language-python">print(\'&lt;b&gt;\')' in html


def test_raw_html_is_shown_as_text_not_markup():
    html = render_markdown("<b>bold?</b>")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html


def test_safe_links_survive_with_noopener():
    html = render_markdown("[docs](https://example.org/x)")
    assert 'href="https://example.org/x"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_images_are_not_fetched():
    html = render_markdown("![tracker](https://tracker.example/p.gif)")
    assert "<img" not in html


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_hostile_markdown_renders_inert(payload):
    assert_inert(str(render_markdown(payload)), allowed_tags=set())


def test_table_alignment_is_the_only_style_allowed():
    html = render_markdown("| a | b |\n|---|--:|\n| 1 | 2 |")
    assert 'style="text-align:right"' in html


@pytest.mark.parametrize("link", ["[docs](https://example.org/x)", "[docs](//example.org/x)", "<https://example.org/x>"])
def test_https_and_protocol_relative_links_are_noopener_noreferrer_nofollow(link):
    html = render_markdown(link)
    assert html.count("<a ") == 1
    assert 'rel="noopener noreferrer nofollow"' in html


@pytest.mark.parametrize(
    "text",
    ["[click me](https://evil.example/x)", "[click me](//evil.example/x)", "<https://evil.example/x>",
     "[click me][r]\n\n[r]: https://evil.example/x"],
)
def test_a_project_may_show_links_as_text(text):
    html = render_markdown(text, links=False)
    assert "<a" not in html and "href" not in html
    # The reader still sees where the link points.
    assert "evil.example/x" in html


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"])
def test_bidirectional_controls_are_shown_escaped(char):
    html = render_markdown(f"pay{char}lanigiro `co{char}de`")
    assert char not in html
    code = f"U+{ord(char):04X}"
    assert html.count(f'<span class="bidi" title="A hidden text direction control">&lt;{code}&gt;</span>') == 2


def test_a_bidirectional_control_in_a_link_title_stays_plain_text():
    html = render_markdown('[x](https://example.org "ti\u202ele")')
    assert 'title="ti&lt;U+202E&gt;le"' in html and "\u202e" not in html


def test_names_show_their_bidirectional_controls_escaped():
    assert visible_bidi("<b>evil\u202egnp.exe") == (
        '&lt;b&gt;evil<span class="bidi" title="A hidden text direction control">&lt;U+202E&gt;</span>gnp.exe'
    )
    assert visible_bidi("rita") == "rita"
