"""A syllabus's outline: the headings of a page or PDF's text, in order, as step titles.

Text extracted from a syllabus mixes headings ("Week 3: Joins"), prose under them, and
furniture (a table of contents, page numbers, copyright lines, navigation). An outline keeps
the headings in their own order, numbering and bullets removed, duplicates and furniture
dropped, each with the first prose that follows it as its notes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from keel.roadmaps.generation.matching import normalise

OUTLINE_MAX: Final = 30
HEADING_MAX_CHARS: Final = 200
NOTES_MAX_CHARS: Final = 600
# An unmarked line longer than this (or with more words) reads as prose, not a heading.
_PLAIN_HEADING_MAX_CHARS: Final = 90
_PLAIN_HEADING_MAX_WORDS: Final = 12
_MARKED_HEADING_MAX_WORDS: Final = 25

_UNIT = r"(?:chapter|week|module|unit|lesson|lecture|part|session|section|day|topic|step)"
_MARKER = re.compile(
    rf"""^(?:
        {_UNIT}\s+(?:\d+|[ivxlc]+)\b\s*[:.)\-–—]?\s*     # Week 3:  Module IV.
      | \d+(?:\.\d+)*[.)]?\s+                           # 1.  1.2  3)
      | [ivxlc]+[.)]\s+                                 # iv.
      | [a-h][.)]\s+                                    # a)
      | [-*•·▪‣◦–—>#]+\s*                               # bullets and Markdown headings
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_LEADERS = re.compile(r"\s*(?:\.{2,}|…+|·{2,}|_{3,})\s*\d*\s*$")
_PAGE = re.compile(r"^(?:page\s+)?\d+(?:\s*(?:/|of)\s*\d+)?$", re.IGNORECASE)
_LINKISH = re.compile(r"(?:https?://|www\.|\S+@\S+\.\w+)", re.IGNORECASE)
_FURNITURE: Final = frozenset(
    normalise(line)
    for line in (
        "table of contents",
        "contents",
        "toc",
        "index",
        "references",
        "bibliography",
        "acknowledgements",
        "acknowledgments",
        "copyright",
        "all rights reserved",
        "about the author",
        "about this course",
        "syllabus",
        "course syllabus",
        "schedule",
        "course schedule",
        "grading",
        "grading policy",
        "assessment",
        "assessments",
        "office hours",
        "prerequisites",
        "learning outcomes",
        "course description",
        "instructor",
        "instructors",
        "contact",
        "textbook",
        "required textbook",
        "course materials",
        "materials",
        "policies",
        "course policies",
        "academic integrity",
        "late policy",
        "attendance",
        "appendix",
        "glossary",
        "notes",
        "home",
        "menu",
        "skip to content",
        "search",
        "log in",
        "login",
        "sign in",
        "sign up",
        "next",
        "previous",
        "back to top",
        "print",
        "share",
        "overview",
        "outline",
        "course outline",
        "resources",
        "further reading",
    )
)


@dataclass(frozen=True)
class OutlineEntry:
    """One heading of a syllabus and the prose that followed it (possibly empty)."""

    title: str
    notes: str


def _heading(line: str) -> tuple[str, bool]:
    """``line`` without its numbering or bullet, and whether it had one."""
    stripped = _MARKER.sub("", line, count=1)
    return _LEADERS.sub("", stripped).strip(" \t:;,-–—"), stripped != line


def _is_furniture(text: str) -> bool:
    if not any(ch.isalpha() for ch in text) or _PAGE.match(text) or _LINKISH.search(text):
        return True
    key = normalise(text)
    return key in _FURNITURE or key.startswith("copyright") or text.startswith("©")


def _key(text: str) -> str:
    # Any script's letters and digits, so headings in Greek or Chinese dedupe too.
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut + "…"


def parse_outline(text: str) -> tuple[OutlineEntry, ...]:
    """The outline of a syllabus's text: at most 30 entries, in the text's order, each title
    unique (ignoring case and punctuation). Never raises; text without headings gives ()."""
    titles: list[str] = []
    notes: list[list[str]] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        heading, marked = _heading(line)
        if not heading or _is_furniture(heading):
            continue
        words = len(heading.split())
        if marked:  # a numbered paragraph is still a paragraph
            prose = len(heading) > HEADING_MAX_CHARS or words > _MARKED_HEADING_MAX_WORDS
        else:
            prose = (
                len(heading) > _PLAIN_HEADING_MAX_CHARS
                or words > _PLAIN_HEADING_MAX_WORDS
                or (heading.endswith(".") and words > 6)
            )
        if prose:
            if notes and sum(map(len, notes[-1])) < NOTES_MAX_CHARS:
                notes[-1].append(line)
            continue
        key = _key(heading)
        if not key or key in seen:
            continue
        if len(titles) == OUTLINE_MAX:
            break
        seen.add(key)
        titles.append(heading)
        notes.append([])
    return tuple(
        OutlineEntry(title, _cut(" ".join(lines), NOTES_MAX_CHARS))
        for title, lines in zip(titles, notes, strict=True)
    )
