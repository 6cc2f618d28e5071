"""split_message: where replies are cut, and the invariant in splitting's docstring."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coach.telegram import splitting
from keel.coach.telegram.splitting import plan_split, split_message, utf16_len


def test_a_short_reply_is_one_message() -> None:
    assert split_message("  Breathe. Then decide.\n") == ["Breathe. Then decide."]


def test_a_blank_reply_is_no_message() -> None:
    assert split_message(" \n\t ") == []


def test_a_cut_falls_between_paragraphs_before_lines_or_words() -> None:
    first = "\n".join(["A line about risk and sizing."] * 3)
    second = "Another paragraph " * 8
    parts = split_message(f"{first}\n\n{second}", limit=150)
    assert parts[0] == first
    assert parts[1].startswith("Another paragraph")


def test_a_cut_falls_after_a_sentence_before_between_words() -> None:
    text = "Stop loss first. " * 6 + "Size the position to the stop and never widen it " * 3
    parts = split_message(text, limit=150)
    assert parts[0].endswith(".")
    assert all(utf16_len(part) <= 150 for part in parts)


def test_emoji_count_as_two_units_as_telegram_counts_them() -> None:
    parts = split_message("📉" * 3000)
    assert [len(part) for part in parts] == [2048, 952]
    assert all(utf16_len(part) <= 4096 for part in parts)


def test_a_word_longer_than_the_limit_is_cut_hard() -> None:
    parts = split_message("x" * 250, limit=100)
    assert parts == ["x" * 100, "x" * 100, "x" * 50]


def test_a_code_block_that_fits_moves_whole_to_the_next_message() -> None:
    code = "```python\n" + "\n".join(f"risk_{i} = {i} * stake" for i in range(100)) + "\n```"
    text = "Word " * 500 + "\n\n" + code + "\n\nThat is all."
    parts = split_message(text)
    assert len(parts) == 2
    assert parts[1] == code + "\n\nThat is all."


def test_a_code_block_longer_than_a_message_is_closed_and_reopened() -> None:
    code = "\n".join(f"    total += trade_{i}.pnl" for i in range(400))
    text = f"Here is the loop:\n\n```python\n{code}\n```\n\nRun it daily."
    parts = split_message(text)
    assert len(parts) == 3
    assert parts[0].startswith("Here is the loop:\n\n```python\n")
    assert parts[0].endswith("\n```")
    assert parts[1].startswith("```python\n    total")
    assert parts[1].endswith("\n```")
    assert parts[2].startswith("```python\n    total")
    assert parts[2].endswith("Run it daily.")
    # Lines are whole and keep their indentation.
    body = [line for part in parts for line in part.splitlines() if "total" in line]
    assert body == code.splitlines()


def test_a_limit_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_message("text", limit=splitting.MIN_LIMIT - 1)


# Properties.

_WORD_CHARS = list("abcdefghXYZ0123456789éß中文📈🚀-_'%$,;:")
_CODE_CHARS = [*_WORD_CHARS, " ", "(", ")", "=", "+", "{", "}", "\t"]
words = st.text(alphabet=st.sampled_from(_WORD_CHARS), min_size=1, max_size=24)
sentences = st.tuples(
    st.lists(words, min_size=1, max_size=14).map(" ".join), st.sampled_from([".", "!", "?", ""])
).map("".join)
lines = st.lists(sentences, min_size=1, max_size=5).map(" ".join)
paragraphs = st.lists(lines, min_size=1, max_size=6).map("\n".join)
code_lines = st.text(alphabet=st.sampled_from(_CODE_CHARS), max_size=90)
code_blocks = st.tuples(
    st.sampled_from(["", "python", "js", "sql"]),
    st.lists(code_lines, max_size=70),
    st.sampled_from(["```", "````"]),
).map(lambda block: f"```{block[0]}\n" + "\n".join(block[1]) + f"\n{block[2]}")
unbroken = st.text(alphabet=st.sampled_from(_WORD_CHARS), min_size=80, max_size=500)
replies = st.lists(st.one_of(paragraphs, code_blocks, unbroken), min_size=1, max_size=10).flatmap(
    lambda chunks: st.sampled_from(["\n\n", "\n", " \n\n  "]).map(lambda s: s.join(chunks))
)
limits = st.integers(min_value=splitting.MIN_LIMIT, max_value=600)


def check_invariant(text: str, limit: int, *, closed_blocks: bool) -> list[splitting.Piece]:
    pieces = plan_split(text, limit)
    parts = split_message(text, limit)
    assert parts == [piece.render(text) for piece in pieces]
    blocks = splitting._blocks(text)
    cursor = 0
    for piece, part in zip(pieces, parts, strict=True):
        assert 1 <= utf16_len(part) <= limit
        assert part.strip()
        # In order; only whitespace dropped between slices.
        assert cursor <= piece.start < piece.end
        assert text[cursor : piece.start].strip() == ""
        cursor = piece.end
        # A fence is reopened exactly when the slice starts inside a block's code, and
        # closed exactly when it ends inside a block.
        starts_in = [
            b for b in blocks if b.start < piece.start < b.end and b.content <= piece.start
        ]
        assert piece.reopen == (starts_in[0].opener if starts_in else "")
        ends_in = [b for b in blocks if b.start < piece.end < b.end]
        assert piece.close == (ends_in[0].fence if ends_in else "")
        if closed_blocks:
            assert all(b.close < len(part) for b in splitting._blocks(part)), part
    assert text[cursor:].strip() == ""
    assert bool(pieces) == bool(text.strip())
    # A block that fits one message lies within one slice.
    for block in blocks:
        block_text = text[block.start : block.end]
        if utf16_len(block_text) <= limit:
            first = block.start + len(block_text) - len(block_text.lstrip())
            assert any(p.start <= first and block.end <= p.end for p in pieces)
    return pieces


@settings(max_examples=150, deadline=None)
@given(text=replies, limit=limits)
def test_model_like_replies_keep_the_invariant(text: str, limit: int) -> None:
    check_invariant(text, limit, closed_blocks=True)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=1500), limit=limits)
def test_any_text_keeps_the_invariant(text: str, limit: int) -> None:
    check_invariant(text, limit, closed_blocks=False)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from([*_WORD_CHARS, "`", "\n", " "]), max_size=1500))
def test_backtick_soup_keeps_the_invariant(text: str) -> None:
    check_invariant(text, 100, closed_blocks=False)


@settings(max_examples=100, deadline=None)
@given(text=replies, limit=limits)
def test_a_split_continues_from_the_end_of_any_part(text: str, limit: int) -> None:
    pieces = plan_split(text, limit)
    for index, piece in enumerate(pieces):
        assert plan_split(text, limit, start=piece.end) == pieces[index + 1 :]
