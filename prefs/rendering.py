"""Safe Markdown for everything a model or a user wrote: prompts, responses, guidelines.

Two layers, so that a bug in one is caught by the other: markdown-it never passes raw HTML
through (it is escaped as text) and refuses `javascript:`/`vbscript:`/`file:`/`data:` links; nh3
(the Ammonia sanitiser) then keeps only an allow-list of tags, attributes and URL schemes.
Images are not rendered at all: a model output must not make the reviewer's browser fetch a URL.
Every link, `https:` and protocol-relative `//host` alike, gets rel="noopener noreferrer
nofollow"; a project may show links as text instead (Project.links_as_text), so a reviewer
sees where a link points and cannot follow it by a click.

Bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its kin) would reorder what the
reviewer reads without showing themselves, so they are shown as `<U+202E>` in a marked span,
as code review tools do; visible_bidi() does the same for names outside Markdown.
"""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "s",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}
# Table alignment is the only style markdown-it writes; nothing else may carry CSS.
_ALIGN = {"style": {"text-align:left", "text-align:right", "text-align:center"}}
_ATTRIBUTE_VALUES = {"th": _ALIGN, "td": _ALIGN}
_URL_SCHEMES = {"http", "https", "mailto"}


# Embeddings, overrides, isolates and marks that change the order text is displayed in.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")
# The escaped form, as Markdown output shows it; only these code points are ever marked.
_BIDI_ESCAPED = re.compile(r"&lt;U\+(061C|200E|200F|202A|202B|202C|202D|202E|2066|2067|2068|2069)&gt;")
_BIDI_SPAN = '<span class="bidi" title="A hidden text direction control">&lt;U+{}&gt;</span>'


def _bidi_as_text(text: str) -> str:
    return _BIDI.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


# A tag of nh3's output: it escapes < and > inside attribute values, so a tag ends at the first >.
_TAG = re.compile(r"(<[^>]*>)")


def _mark_bidi(html: str) -> str:
    """Wraps the escaped controls of text nodes in our span; those in attributes (a link's title)
    stay plain escaped text."""
    parts = _TAG.split(html)
    # split() with one group alternates text, tag, text, …: the even parts are text.
    parts[::2] = [_BIDI_ESCAPED.sub(lambda match: _BIDI_SPAN.format(match.group(1)), text) for text in parts[::2]]
    return "".join(parts)


def visible_bidi(value) -> SafeString:
    """Escapes `value` for HTML and shows its bidirectional controls, marked."""
    escaped = str(conditional_escape(value))
    return mark_safe(_BIDI.sub(lambda match: _BIDI_SPAN.format(f"{ord(match.group()):04X}"), escaped))  # noqa: S308 - escaped just above


@lru_cache(maxsize=2)
def _parser(links: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    if not links:
        # `[text](url)`, `<https://…>` and reference definitions stay as the text they are.
        md.disable(["link", "autolink", "reference"])
    return md


def render_markdown(text: str, *, links: bool = True) -> SafeString:
    # Controls become visible text first, so that no later step can hide them again.
    html = _parser(links).render(_bidi_as_text(text or ""))
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        tag_attribute_values=_ATTRIBUTE_VALUES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(_mark_bidi(clean))  # noqa: S308 - sanitised by nh3 just above; adds only our span
