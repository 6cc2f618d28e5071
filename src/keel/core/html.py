"""User-supplied HTML made safe to show: named nh3 (Ammonia) allow-list cleaners.

Each cleaner parses the input as a browser would (html5ever), keeps only what its allow-list
names and serialises the result again, so what comes out is well-formed HTML that cannot
run script: no element outside the list (``script``, ``style``, ``svg``, ``iframe``...), no
attribute outside it (``on*`` handlers, ``style``, ``src``), and no link whose scheme is
not http, https or mailto (entity- or whitespace-obfuscated ``javascript:`` included, since
the scheme is read after decoding). Regex stripping, the original's approach, cannot do this.

    rich_text(html)   step descriptions, bios: a little formatting and safe links
    plain_text(html)  every tag removed, text kept (escaped, ready to insert as HTML)

The output of either is HTML: insert it unescaped (Jinja ``|safe``) and nowhere else (never
inside an attribute or a script). Cleaning is idempotent, so re-cleaning stored text on
display costs nothing but time.
"""

from __future__ import annotations

import nh3

# Formatting a step description needs, and no more. ``pre`` is left out on purpose: the HTML
# parser drops a newline right after ``<pre>``, so cleaning would not be idempotent.
RICH_TEXT_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "br",
        "code",
        "em",
        "h3",
        "h4",
        "i",
        "li",
        "ol",
        "p",
        "s",
        "strong",
        "u",
        "ul",
    }
)
RICH_TEXT_ATTRIBUTES: dict[str, frozenset[str]] = {"a": frozenset({"href", "title"})}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Text inside these is dropped with the tag, not kept as visible text.
_DROP_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "iframe", "object"})

_RICH_TEXT = nh3.Cleaner(
    tags=RICH_TEXT_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=RICH_TEXT_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    # A user's link must not get our page's window.opener, its referrer or our ranking.
    link_rel="noopener noreferrer nofollow",
    # Relative links would point into this site under a user's text: absolute URLs only.
    url_relative="deny",
    strip_comments=True,
)
_PLAIN_TEXT = nh3.Cleaner(
    tags=set(),
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={},
    url_schemes=set(),
    link_rel=None,
    strip_comments=True,
)


def rich_text(html: str) -> str:
    """``html`` reduced to the rich-text allow-list (paragraphs, emphasis, lists, code, h3/h4,
    block quotes, and links to http/https/mailto URLs with ``rel="noopener noreferrer
    nofollow"``). Never raises; the result is safe to insert as HTML."""
    return _RICH_TEXT.clean(html)


def plain_text(html: str) -> str:
    """``html`` with every tag and comment removed and its text kept, escaped (``a < b``
    comes back as ``a &lt; b``): safe to insert as HTML. Script and style bodies are
    dropped, not shown. Never raises."""
    return _PLAIN_TEXT.clean(html)
