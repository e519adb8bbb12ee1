from __future__ import annotations

import pytest

from prefs.rendering import render_markdown
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
