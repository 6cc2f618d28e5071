"""keel.core.html: an XSS corpus comes out unable to run script, benign formatting survives,
and cleaning is idempotent on anything."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core import html

# Script, handlers, script-capable URLs (plain, cased, entity-, whitespace- and
# control-character-obfuscated), SVG/MathML, style, frames and plugins, mutation XSS
# (markup that re-parses differently after serialisation), unclosed and malformed tags.
XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)",  # unclosed
    '<img """><script>alert(1)</script>">',
    "<body onload=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<xss onafterscriptexecute=alert(1)><script>1</script>",
    '<a href="https://ok.example" onmouseover="alert(1)">x</a>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    "<a href=javascript:alert(1)>x</a>",
    '<a/href="javascript:alert(1)">x</a>',
    '<a href="javascript:alert(1)"',  # unclosed
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="\x01javascript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;avascript&colon;alert(1)">x</a>',
    '<a href="&#0000106avascript:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="file:///etc/passwd">x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    '<math href="javascript:alert(1)">x</math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>@import 'http://evil.example/x.css';</style>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<base href="javascript:alert(1)//">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel=stylesheet href="javascript:alert(1)">',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    "<!--<img src=x onerror=alert(1)>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<a href='https://ok.example'>ok</a><script>alert(1)",
]

SCRIPT_CAPABLE_ELEMENTS = {
    "script",
    "style",
    "iframe",
    "frame",
    "object",
    "embed",
    "svg",
    "math",
    "base",
    "meta",
    "link",
    "form",
    "template",
    "img",
    "input",
    "body",
}


class _Parsed(HTMLParser):
    """Every start tag with its attributes, entity-decoded, as a browser would see them."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.comments: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def _url_scheme(url: str) -> str | None:
    # As the WHATWG URL parser reads it: C0 controls and spaces trimmed, tab/newline removed.
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08 \x0c"))
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*):", cleaned)
    return match.group(1).lower() if match else None


def _can_execute(markup: str) -> list[str]:
    """What in ``markup`` could run script or load active content; empty if nothing."""
    found = []
    parsed = _Parsed(markup)
    for tag, attrs in parsed.tags:
        if tag in SCRIPT_CAPABLE_ELEMENTS:
            found.append(f"<{tag}>")
        if tag not in html.RICH_TEXT_TAGS:
            found.append(f"<{tag}> outside the allow-list")
        for name, value in attrs:
            if name.startswith("on"):
                found.append(f"{tag}[{name}]")
            if name in ("style", "src", "srcdoc", "action", "formaction", "xlink:href"):
                found.append(f"{tag}[{name}]")
            if name == "href" and value is not None:
                scheme = _url_scheme(value)
                if scheme not in html.URL_SCHEMES:
                    found.append(f"{tag}[href] scheme {scheme}")
    if parsed.comments:
        found.append("comment")
    if re.search(r"<\s*script", markup, re.IGNORECASE):
        found.append("<script")
    return found


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_the_xss_corpus_is_neutralised_as_rich_text(payload: str) -> None:
    cleaned = html.rich_text(payload)
    assert _can_execute(cleaned) == [], cleaned


@pytest.mark.parametrize("payload", XSS_CORPUS)
def test_the_xss_corpus_leaves_no_tag_as_plain_text(payload: str) -> None:
    cleaned = html.plain_text(payload)
    assert "<" not in cleaned, cleaned
    assert ">" not in cleaned, cleaned
    assert _Parsed(cleaned).tags == []


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            "<p>Learn <strong>SQL</strong> <em>SELECT</em> basics</p>",
            "<p>Learn <strong>SQL</strong> <em>SELECT</em> basics</p>",
        ),
        ("<h3>Week 1</h3><ul><li>one</li><li>two</li></ul>", None),
        ("<ol><li>first</li></ol><blockquote>quoted</blockquote>", None),
        ("<p>use <code>x &lt; y</code> &amp; <b>b</b> <i>i</i> <u>u</u> <s>s</s><br></p>", None),
        (
            '<a href="https://docs.python.org/3/" title="Docs">Python docs</a>',
            '<a href="https://docs.python.org/3/" title="Docs" '
            'rel="noopener noreferrer nofollow">Python docs</a>',
        ),
        (
            '<a href="mailto:teacher@example.com">mail</a>',
            '<a href="mailto:teacher@example.com" rel="noopener noreferrer nofollow">mail</a>',
        ),
        ("Tom &amp; Jerry, 3 < 4", "Tom &amp; Jerry, 3 &lt; 4"),
    ],
)
def test_benign_formatting_survives(markup: str, expected: str | None) -> None:
    assert html.rich_text(markup) == (expected if expected is not None else markup)


def test_a_users_link_is_made_safe_to_follow() -> None:
    cleaned = html.rich_text('<a href="https://x.example" rel="opener" target="_top">x</a>')
    assert cleaned == '<a href="https://x.example" rel="noopener noreferrer nofollow">x</a>'


def test_relative_links_are_dropped() -> None:
    # A user's text must not link into this site (or elsewhere) by a relative reference.
    for href in ("/roadmaps/admin", "//evil.example/", "#top", "x"):
        assert html.rich_text(f'<a href="{href}">x</a>') == (
            '<a rel="noopener noreferrer nofollow">x</a>'
        )


def test_plain_text_keeps_text_and_drops_script_bodies() -> None:
    assert html.plain_text("<h1>Week <b>1</b></h1><script>alert(1)</script>") == "Week 1"
    assert html.plain_text("a < b & <style>p{}</style>c") == "a &lt; b &amp; c"
    assert html.plain_text("<!-- note -->kept") == "kept"


_FRAGMENTS = st.sampled_from(
    [
        *XSS_CORPUS,
        "<p>",
        "</p>",
        "<a href='https://ok.example'>",
        "</a>",
        "<ul><li>",
        "<b>",
        "</i>",
        "<pre>\n",
        "&lt;",
        "&amp;",
        "&#",
        '"',
        "'",
        "<",
        ">",
        "=",
        " onclick=alert(1) ",
        "\n",
    ]
)
_MARKUP = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=12)), max_size=12).map("".join)
# nh3 serialises every attribute value in double quotes and escapes any other "<", so each
# "<" in its output opens a start tag of this shape or an end tag.
_START_TAG = re.compile(r'<[a-z][a-z0-9]*((?:\s+[^\s"\'=<>/]+(?:="[^"]*")?)*)\s*/?>')
_END_TAG = re.compile(r"</[a-z][a-z0-9]*>")
_ATTRIBUTE_NAME = re.compile(r'\s+([^\s"\'=<>/]+)(?:="[^"]*")?')


def _attribute_names(markup: str) -> list[str]:
    names = []
    for at in (i for i, char in enumerate(markup) if char == "<"):
        start = _START_TAG.match(markup, at)
        if start is None:
            assert _END_TAG.match(markup, at), markup[at:]
            continue
        names += _ATTRIBUTE_NAME.findall(start.group(1))
    return names


@settings(max_examples=300, deadline=None)
@given(_MARKUP)
def test_cleaning_is_idempotent_and_never_leaves_script_or_handlers(markup: str) -> None:
    for clean in (html.rich_text, html.plain_text):
        once = clean(markup)
        assert clean(once) == once
        assert "<script" not in once.lower()
        assert not [n for n in _attribute_names(once) if n.lower().startswith("on")], once
    assert _can_execute(html.rich_text(markup)) == []
    assert "<" not in html.plain_text(markup)
