"""A syllabus as text: what generation reads, from an HTML page, plain text or a PDF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

SyllabusKind = Literal["html", "text", "pdf"]
MAX_CHARS = 100_000  # a long syllabus is ~30 000; past this generation gains nothing


@dataclass(frozen=True)
class SyllabusText:
    """A syllabus reduced to text lines (headings and list items one to a line, list items
    prefixed ``- ``). ``source`` is the final URL or the uploaded file's name; ``truncated``
    is True when the text was cut at the character cap."""

    text: str
    source: str
    kind: SyllabusKind
    truncated: bool = False
    pages: int | None = None  # PDFs only


# Elements whose content is never text a reader sees.
_HIDDEN = frozenset({"script", "style", "template", "noscript", "svg", "math", "iframe", "object"})
# Elements that start a new line (block level, plus br).
_BREAKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
        "dl", "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "td", "th", "title", "tr", "ul",
    }
)  # fmt: skip
_WHITESPACE_RUN = re.compile(r"\s+")
# Void elements never get an end tag, so they must not open a hidden region.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})


class _TextCollector(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.size = 0
        self.hidden_depth = 0
        self.title: list[str] = []
        self.in_title = False
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _HIDDEN and tag not in _VOID:
            self.hidden_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        if tag in _BREAKS:
            self._add("\n- " if tag == "li" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _HIDDEN and self.hidden_depth:
            self.hidden_depth -= 1
        elif tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
        if tag in _BREAKS:
            self._add("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.hidden_depth:
            # Outside <pre> a newline in the source is a space, as a browser shows it.
            self._add(data if self.pre_depth else _WHITESPACE_RUN.sub(" ", data))

    def _add(self, text: str) -> None:
        # Markup is mostly blanks: keep a few times the cap before tidying, and no more.
        room = 4 * self.max_chars + 1 - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)


def html_to_text(html: str, *, max_chars: int = MAX_CHARS) -> tuple[str, bool]:
    """The visible text of ``html`` as lines (see :class:`SyllabusText`), and whether it was
    cut at ``max_chars``. Scripts, styles and the head (except the title, which becomes the
    first line) are dropped. Never raises."""
    collector = _TextCollector(max_chars)
    collector.feed(html)
    collector.close()
    title = " ".join("".join(collector.title).split())[:1000]
    body = "".join(collector.parts)
    text, cut = tidy_text(f"{title}\n{body}" if title else body, max_chars=max_chars)
    return text, cut or collector.size > 4 * max_chars


_SPACES = re.compile(r"[^\S\n]+")
_LIST_MARKER_ONLY = re.compile(r"^-\s*$")
# C0/C1 controls (but tab and newline), and the invisible format characters that can hide or
# reorder text: soft hyphen, zero-width and bidi controls, word joiners, BOM, tag characters.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def tidy_text(text: str, *, max_chars: int = MAX_CHARS) -> tuple[str, bool]:
    """``text`` with controls and invisible format characters removed (bidi overrides and
    zero-width characters included), runs of spaces collapsed, blank lines and empty list
    items dropped, cut to ``max_chars``; and whether it was cut."""
    cleaned = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in cleaned.split("\n"))
    kept = "\n".join(line for line in lines if line and not _LIST_MARKER_ONLY.match(line))
    if len(kept) <= max_chars:
        return kept, False
    return kept[:max_chars].rstrip(), True
