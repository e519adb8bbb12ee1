from __future__ import annotations

from django import template

from prefs.rendering import render_markdown, visible_bidi

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str, project=None):
    """`{{ text|markdown:project }}`: the project decides whether links stay links."""
    return render_markdown(text, links=not getattr(project, "links_as_text", False))


@register.filter(name="visible_bidi")
def visible_bidi_filter(value):
    """For names: escaped, with hidden direction controls shown as `<U+202E>`."""
    return visible_bidi(value)
