"""Safe Markdown for everything a model or a user wrote: prompts, responses, guidelines.

Two layers, so that a bug in one is caught by the other: markdown-it never passes raw HTML
through (it is escaped as text) and refuses `javascript:`/`vbscript:`/`file:`/`data:` links; nh3
(the Ammonia sanitiser) then keeps only an allow-list of tags, attributes and URL schemes.
Images are not rendered at all: a model output must not make the reviewer's browser fetch a URL.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
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


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    return md


def render_markdown(text: str) -> SafeString:
    html = _parser().render(text or "")
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        tag_attribute_values=_ATTRIBUTE_VALUES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
