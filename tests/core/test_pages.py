"""The front door's and the 404 page's pieces without a server: content negotiation on
``Accept`` and the stylesheet hash the pages' CSP allows."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from keel.core import pages

BROWSERS = [
    # Chromium, Firefox and Safari navigating to a page.
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
]


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        *((accept, True) for accept in BROWSERS),
        ("text/html", True),
        ("TEXT/HTML", True),
        ("text/*", True),
        ("text/html; charset=utf-8", True),
        ("application/json, text/html", True),  # a tie goes to the page
        ("application/json;q=0.5, text/html", True),
        ("text/html, application/json", True),
        # API clients: nothing, anything, JSON.
        ("", False),
        ("*/*", False),
        ("*/*;q=0.8", False),
        ("application/json", False),
        ("application/problem+json", False),
        ("application/*", False),
        ("text/plain", False),
        # q-values respected.
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0.5, application/problem+json;q=0.6", False),
        ("application/problem+json, text/html;q=0.9", False),
        ("text/html;q=0.5, application/*", False),
        ("text/html;q=0", False),
        ("text/html;q=0, */*", False),
        ("text/html;q=0.9, */*", False),  # anything (so problem+json) is worth more than HTML
        ("text/*;q=0, text/html", True),  # the most specific range sets the q-value
        ("text/html, text/*;q=0", True),
        ("text/html;q=0.4, text/*;q=0.9, application/json;q=0.5", False),
        # Malformed ranges and q-values are skipped, not trusted.
        ("text/html;q=oops", False),
        ("text/html;q=nan", False),
        ("text/html;q=2", False),
        ("html", False),
        ("text/", False),
        (",,;,", False),
        ("application/json, " * 100 + "text/html", False),  # past the ranges read
    ],
)
def test_prefers_html_on_accept(accept: str, html: bool) -> None:
    assert pages.prefers_html(accept) is html


def test_the_csp_allows_exactly_the_inline_stylesheet_and_no_script() -> None:
    css = (pages.HERE / "pages.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in pages.CSP
    assert "default-src 'none'" in pages.CSP
    assert "script-src" not in pages.CSP  # default-src 'none' forbids every script
    assert "unsafe-inline" not in pages.CSP
    for name in ("front_door.html", "not_found.html", "base.html"):
        source = (pages.HERE / name).read_text(encoding="utf-8")
        assert "<script" not in source
        assert not re.search(r"\son[a-z]+=", source)  # no event-handler attributes
