"""Cutting a reply into Telegram messages.

Telegram refuses a message longer than 4096 characters, counted in UTF-16 code units (an emoji
outside the Basic Multilingual Plane counts 2), so lengths here are measured that way.

A cut goes, in order of preference, between paragraphs (a blank line), between lines, between
lines of a code block too long for one message, after a sentence, between words; a hard cut at
a character is the last resort. A cut that leaves the part under half the limit is taken only
when no cut of any kind would fill it more. A fenced code block (a line of three or more
backticks, an optional language tag, up to the next fence line) that fits in one message is
never cut. One that does not fit is cut between its lines: the part closes the fence (``\\n```
``) and the next one reopens it with the same line (``\\`\\`\\`python\\n``), so every part reads
as valid Markdown on its own.

The exact invariant (``tests/coach/telegram/test_splitting.py`` property-tests it):

* every part is 1 to ``limit`` UTF-16 units long and not blank;
* each part is one slice ``text[start:end]`` of the text, preceded by the fence line it reopens
  when the slice starts inside a code block and followed by a closing fence when the slice ends
  inside one, and nothing else;
* the slices are in order and what lies before the first, between two and after the last is
  whitespace only (whitespace at a cut is dropped; inside a code block only the line break is);
* a code block that fits in ``limit`` lies within one slice.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["MIN_LIMIT", "TELEGRAM_LIMIT", "Piece", "plan_split", "split_message", "utf16_len"]

TELEGRAM_LIMIT = 4096
# Room for a reopened fence, a closing one and some text between them.
MIN_LIMIT = 100
# A longer "fence line" is prose that happens to start with backticks; capping it bounds what a
# reopened fence costs a part.
_MAX_FENCE_LINE = 40

_FENCE_LINE = re.compile(r"^[ \t]*(`{3,})(.*)$", re.MULTILINE)
_NEWLINE = re.compile(r"\n")
_PARAGRAPH = re.compile(r"\n[ \t\r]*\n")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)")
_SPACE = re.compile(r"\s")

# Cut kinds, most preferred first.
_PARAGRAPH_BREAK, _LINE_BREAK, _CODE_LINE_BREAK, _SENTENCE_BREAK, _WORD_BREAK = range(5)
_KINDS = (_PARAGRAPH_BREAK, _LINE_BREAK, _CODE_LINE_BREAK, _SENTENCE_BREAK, _WORD_BREAK)


def utf16_len(text: str) -> int:
    """The length Telegram measures: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Piece:
    """One message of a split text: the slice ``text[start:end]``, after ``reopen`` (a fence
    line such as "```python") when it starts inside a code block and before ``close`` (the
    block's backticks) when it ends inside one."""

    start: int
    end: int
    reopen: str = ""
    close: str = ""

    def render(self, text: str) -> str:
        """The message's text, from the ``text`` this piece was cut from."""
        head = f"{self.reopen}\n" if self.reopen else ""
        tail = f"\n{self.close}" if self.close else ""
        return f"{head}{text[self.start : self.end]}{tail}"


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """``text`` as messages of at most ``limit`` UTF-16 units (the module docstring says where
    it cuts). A blank text gives no message."""
    return [piece.render(text) for piece in plan_split(text, limit)]


def plan_split(text: str, limit: int = TELEGRAM_LIMIT, *, start: int = 0) -> list[Piece]:
    """The pieces :func:`split_message` renders, for ``text[start:]``. ``start`` continues a
    split: ``plan_split(t, start=p[0].end) == p[1:]`` for ``p = plan_split(t)``, which is how a
    streaming reply keeps the messages it already froze while the text grows."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} UTF-16 units")
    return _Planner(text, limit).plan(start)


@dataclass(frozen=True)
class _Block:
    start: int  # the opening fence's first backtick
    content: int  # first character after the opening line
    close: int  # first character of the closing fence line; len(text) when unclosed
    end: int  # just past the closing fence's backticks; len(text) when unclosed
    opener: str  # the opening line without its indentation, e.g. "```python"
    fence: str  # the opener's backticks, which close it


def _blocks(text: str) -> list[_Block]:
    """The fenced code blocks of ``text``, in order. A block still open at the end (a reply
    being streamed) runs to the end."""
    found: list[_Block] = []
    opened: tuple[int, int, str, str] | None = None
    for line in _FENCE_LINE.finditer(text):
        ticks, info = line.group(1), line.group(2)
        if opened is None:
            opener = line.group(0).strip()
            if "`" in info or len(opener) > _MAX_FENCE_LINE:
                continue
            opened = (line.start(1), min(line.end() + 1, len(text)), opener, ticks)
        elif not info.strip() and len(ticks) >= len(opened[3]):
            start, content, opener, fence = opened
            # The block ends at its last backtick: whitespace around fences is prose's.
            found.append(_Block(start, content, line.start(), line.end(1), opener, fence))
            opened = None
    if opened is not None:
        start, content, opener, fence = opened
        found.append(_Block(start, content, len(text), len(text), opener, fence))
    return found


@dataclass(frozen=True)
class _Cut:
    end: int  # the part is text[start:end]
    block: _Block | None  # the block the cut falls inside, which the part must close


class _Planner:
    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        # units[i]: UTF-16 length of text[:i], so any slice is measured in O(1).
        self.units = [0, *accumulate(2 if ord(char) > 0xFFFF else 1 for char in text)]
        self.blocks = _blocks(text)
        self.block_starts = [block.start for block in self.blocks]

    def plan(self, start: int) -> list[Piece]:
        text, pieces = self.text, []
        position = self._begin(start)
        while position < len(text):
            block = self._block_at(position)
            reopen = block.opener if block is not None and position >= block.content else ""
            head = utf16_len(reopen) + 1 if reopen else 0
            end = len(text.rstrip())
            if end <= position:
                break
            if head + self._measure(position, end) <= self.limit:
                pieces.append(Piece(position, end, reopen))
                break
            cut = self._cut(position, head)
            if cut.block is not None:
                pieces.append(Piece(position, cut.end, reopen, cut.block.fence))
            else:
                # Whitespace before a cut in prose is dropped, as Telegram would drop it.
                kept = len(text[position : cut.end].rstrip())
                pieces.append(Piece(position, position + kept, reopen))
            position = self._begin(cut.end)
        return pieces

    def _measure(self, start: int, end: int) -> int:
        return self.units[end] - self.units[start]

    def _block_at(self, position: int) -> _Block | None:
        """The block ``position`` falls strictly inside (its fence lines included)."""
        index = bisect.bisect_right(self.block_starts, position) - 1
        if index >= 0 and self.blocks[index].start < position < self.blocks[index].end:
            return self.blocks[index]
        return None

    def _begin(self, position: int) -> int:
        """Where the part after a cut at ``position`` starts: past the whitespace in prose,
        past the one line break inside a code block (its indentation is code)."""
        text = self.text
        block = self._block_at(position)
        if block is not None and position >= block.content:
            return position + 1 if position < len(text) and text[position] == "\n" else position
        while position < len(text) and text[position].isspace():
            position += 1
        return position

    def _fits(self, block: _Block) -> bool:
        return self._measure(block.start, block.end) <= self.limit

    def _inside_cut_allowed(self, block: _Block, end: int) -> bool:
        # Only between content lines of a block too long for one message, leaving text on
        # both sides (never an empty block, never the closing line alone).
        return not self._fits(block) and block.content < end <= block.close - 2

    def _cut(self, start: int, head: int) -> _Cut:
        """The best cut of ``text[start:]`` whose part, fences included, fits the limit."""
        budget = self.limit - head
        # The furthest end whose slice fits without a closing fence.
        furthest = bisect.bisect_right(self.units, self.units[start] + budget) - 1
        candidates = self._candidates(start, furthest, head)
        half = self.limit // 2
        for kind in _KINDS:
            good = [cut for k, cut, size in candidates if k == kind and size >= half]
            if good:
                return good[-1]
        for kind in _KINDS:
            some = [cut for k, cut, _size in candidates if k == kind]
            if some:
                return some[-1]
        return self._hard_cut(start, furthest, head)

    def _candidates(self, start: int, furthest: int, head: int) -> list[tuple[int, _Cut, int]]:
        """(kind, cut, part size) of every natural cut in ``text[start:furthest]``, by end."""
        text, found = self.text, []
        for match in _NEWLINE.finditer(text, start + 1, furthest + 1):
            end = match.start()
            block = self._block_at(end)
            size = head + self._measure(start, end)
            if block is None:
                kind = _PARAGRAPH_BREAK if _PARAGRAPH.match(text, end) else _LINE_BREAK
                found.append((kind, _Cut(end, None), size))
            elif self._inside_cut_allowed(block, end):
                size += 1 + len(block.fence)
                if size <= self.limit:
                    found.append((_CODE_LINE_BREAK, _Cut(end, block), size))
        # endpos one past `furthest` so the lookahead for whitespace sees the next character.
        window_end = min(len(text), furthest + 2)
        for match in _SENTENCE_END.finditer(text, start, window_end):
            end = match.end()
            if end <= furthest and self._block_at(end) is None:
                found.append((_SENTENCE_BREAK, _Cut(end, None), head + self._measure(start, end)))
        for match in _SPACE.finditer(text, start + 1, furthest + 1):
            end = match.start()
            if not text[end - 1].isspace() and self._block_at(end) is None:
                found.append((_WORD_BREAK, _Cut(end, None), head + self._measure(start, end)))
        found.sort(key=lambda item: item[1].end)
        return found

    def _hard_cut(self, start: int, furthest: int, head: int) -> _Cut:
        end = furthest
        block = self._block_at(end)
        if block is None:
            return _Cut(end, None)
        if self._fits(block) or end <= block.content:
            # Never inside a block that fits, nor inside an opening fence line: cut before it.
            if block.start > start:
                return _Cut(block.start, None)
            return _Cut(end, None)
        end = min(end, block.close - 2)
        closing = 1 + len(block.fence)
        while end > start + 1 and head + self._measure(start, end) + closing > self.limit:
            end -= 1
        if end <= block.content and block.start > start:
            return _Cut(block.start, None)
        return _Cut(end, block)
