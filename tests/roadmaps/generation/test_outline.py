"""A syllabus's headings become an outline in their own order, furniture dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keel.roadmaps.generation.outline import (
    HEADING_MAX_CHARS,
    NOTES_MAX_CHARS,
    OUTLINE_MAX,
    parse_outline,
)

SYLLABUS = """\
Table of Contents
Course syllabus
Week 1: The relational model
Relations, keys and schemas. We read chapter one and do the first problem set together.
Week 2 - SQL SELECT and filtering
  3. Joins and aggregation
3) Joins and Aggregation
Indexes and query plans ........ 12
Page 3 of 10
© 2025 Example University. All rights reserved.
• Normalisation
## Transactions
https://example.edu/cs145
Grading
Module IV. Final project
"""


def test_headings_keep_their_order_without_numbering_or_furniture() -> None:
    outline = parse_outline(SYLLABUS)
    assert [entry.title for entry in outline] == [
        "The relational model",
        "SQL SELECT and filtering",
        "Joins and aggregation",
        "Indexes and query plans",
        "Normalisation",
        "Transactions",
        "Final project",
    ]


def test_prose_under_a_heading_becomes_its_notes() -> None:
    first = parse_outline(SYLLABUS)[0]
    assert first.notes.startswith("Relations, keys and schemas.")
    assert parse_outline(SYLLABUS)[1].notes == ""


def test_headings_in_any_script_are_kept_and_deduplicated() -> None:
    outline = parse_outline("第一章 数据库\n第二章 查询\n第二章 查询\nΕισαγωγή\nεισαγωγή\n")
    assert [entry.title for entry in outline] == ["第一章 数据库", "第二章 查询", "Εισαγωγή"]


def test_the_outline_is_capped() -> None:
    text = "\n".join(f"Lesson {n}: topic number {n}" for n in range(1, 100))
    outline = parse_outline(text)
    assert len(outline) == OUTLINE_MAX
    assert outline[-1].title == f"topic number {OUTLINE_MAX}"


def test_text_without_headings_gives_nothing() -> None:
    prose = "This course is about many things and it goes on for a long while. " * 3
    assert parse_outline(prose) == ()
    assert parse_outline("") == ()


@given(st.text(max_size=3000))
def test_any_text_gives_a_bounded_unique_ordered_outline(text: str) -> None:
    outline = parse_outline(text)
    assert len(outline) <= OUTLINE_MAX
    titles = [entry.title for entry in outline]
    assert all(0 < len(t) <= HEADING_MAX_CHARS and t == t.strip() for t in titles)
    assert len({t.casefold() for t in titles}) == len(titles)
    assert all(len(entry.notes) <= NOTES_MAX_CHARS for entry in outline)


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9)
headings_strategy = st.lists(
    st.lists(words, min_size=1, max_size=4).map(lambda ws: " ".join(ws).capitalize()),
    max_size=40,
)


@given(headings_strategy)
def test_plain_headings_come_out_in_order(headings: list[str]) -> None:
    text = "\n".join(f"{n}. {h}" for n, h in enumerate(headings, 1))
    titles = [entry.title for entry in parse_outline(text)]
    # Every title kept is one of the headings, in the order they were written.
    positions = [headings.index(t) for t in titles]
    assert positions == sorted(positions)
