"""Hostile strings that must come out of every page inert, and the check that they did."""

from __future__ import annotations

from html.parser import HTMLParser

XSS_PAYLOADS = [
    "<script>alert('xss-script')</script>",
    '<img src=x onerror="alert(\'xss-img\')">',
    '<svg onload="alert(\'xss-svg\')"><circle r=1></svg>',
    "[click me](javascript:alert('xss-md-link'))",
    "[click](JaVaScRiPt:alert('xss-md-case'))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](https://tracker.example/p.gif)",
    '<a href="javascript:alert(\'xss-a\')">a</a>',
    '<iframe src="https://evil.example"></iframe>',
    '"><script>alert("xss-attr")</script>',
    "<style>body{display:none}</style>",
    "[x](vbscript:msgbox('xss-vb'))",
    "<details open ontoggle=alert('xss-toggle')>",
    "[x](&#106;avascript:alert('xss-entity'))",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('xss-mxss')>",
    "{{ 7|add:7 }} {% now 'Y' %}",
]

_FORBIDDEN_TAGS = {"iframe", "svg", "img", "object", "embed", "math", "style", "base", "link", "meta", "form"}
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data"}
_BAD_SCHEMES = ("javascript:", "data:", "vbscript:")


class _Audit(HTMLParser):
    def __init__(self, allowed_tags: set[str], script_sources: tuple[str, ...] = ("/static/",)):
        super().__init__(convert_charrefs=True)
        self.allowed = allowed_tags
        self.script_sources = script_sources
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag in _FORBIDDEN_TAGS and tag not in self.allowed:
            self.problems.append(f"<{tag}> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")
            if name in _URL_ATTRS and value:
                scheme = "".join(value.split()).lower()
                if scheme.startswith(_BAD_SCHEMES):
                    self.problems.append(f"{name}={value!r} on <{tag}>")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if not src.startswith(self.script_sources):
                self.problems.append(f"<script> not from {'/'.join(self.script_sources)}: {src!r}")
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("inline script content")


def assert_inert(
    html: str,
    *,
    allowed_tags: set[str] = frozenset({"form", "link", "meta"}),
    script_sources: tuple[str, ...] = ("/static/",),
) -> None:
    """No executable markup survives: no event handlers, no script other than ours, no
    javascript:/data: URLs, no elements that load or run things. The page's own <form>,
    <link rel=stylesheet> and <meta> are allowed unless a caller says otherwise; scripts may
    only be files under `script_sources` (Django's admin adds its /admin/jsi18n/)."""
    audit = _Audit(set(allowed_tags), tuple(script_sources))
    audit.feed(html)
    audit.close()
    assert audit.problems == [], audit.problems
