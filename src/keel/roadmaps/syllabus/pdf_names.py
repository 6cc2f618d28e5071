"""Names in raw PDF bytes, read as a PDF reader tokenises them: comments and literal strings
are not names, ``#xx`` escapes are decoded (``/J#61vaScript`` is ``/JavaScript``), and
stream bodies (binary data) are skipped.

It finds objects no cross-reference table lists, which a repairing reader may still load.
Hostile input decides how much work a scan is, so the common tokens (plain names, comments,
strings nested up to four deep) are skipped inside one regular expression, and only the
rare ones come back to Python: names with escapes, deeper or unterminated strings. Past
``MAX_SLOW_TOKENS`` of those, or strings nested past ``MAX_STRING_DEPTH``, the scan gives up
with :class:`TooComplex`; no PDF writer produces either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_SLOW_TOKENS = 20_000
MAX_STRING_DEPTH = 64


class TooComplex(Exception):
    """The bytes are built to make the scan slow."""


_WS = rb"\x00\t\n\x0c\r "  # PDF whitespace
_NAME_CHAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_PLAIN_NAME_CHAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%#]"
_STREAM_START = re.compile(rb">>[" + _WS + rb"]*+stream\r?\n")
_HEX_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_IN_STRING = re.compile(rb"[()\\]")


def _nested_string(depth: int) -> bytes:
    inner = rb"|" + _nested_string(depth - 1) if depth else b""
    return rb"\((?:[^()\\]|\\." + inner + rb")*+\)"


def _scanner(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    """Skip tokens that cannot be a wanted name; stop at one that may be, or at the end."""
    plain_wanted = b"|".join(re.escape(name[1:]) for name in sorted(wanted))
    skip = (
        rb"[^%(/]++"  # everything that starts no comment, string or name
        rb"|%[^\r\n]*+"  # a comment
        + rb"|" + _nested_string(4)  # a literal string
        + rb"|/(?!(?:" + plain_wanted + rb")(?!" + _NAME_CHAR + rb"))"
        + _PLAIN_NAME_CHAR + rb"*+(?!" + _NAME_CHAR + rb")"  # an unescaped unwanted name
    )  # fmt: skip
    return re.compile(rb"(?:" + skip + rb")*+(?:(/" + _NAME_CHAR + rb"*+)|(\()|\Z)", re.DOTALL)


class NameScanner:
    """Finds ``wanted`` names (each with its leading ``/``) in raw PDF bytes."""

    def __init__(self, wanted: frozenset[bytes]) -> None:
        self.wanted = wanted
        self._scan = _scanner(wanted)

    def in_file(self, data: bytes) -> Iterator[bytes]:
        """Wanted names in ``data`` outside stream bodies. Raises :class:`TooComplex`."""
        slow = [MAX_SLOW_TOKENS]
        pos = 0
        while (start := _STREAM_START.search(data, pos)) is not None:
            yield from self._names(data, pos, start.start(), slow)
            pos = data.find(b"endstream", start.end())
            if pos < 0:
                return  # the rest is one unterminated stream: no reader parses objects there
        yield from self._names(data, pos, len(data), slow)

    def in_syntax(self, data: bytes) -> Iterator[bytes]:
        """Wanted names in ``data`` that is all object syntax (an object stream's body)."""
        yield from self._names(data, 0, len(data), [MAX_SLOW_TOKENS])

    def _names(self, data: bytes, pos: int, end: int, slow: list[int]) -> Iterator[bytes]:
        while pos < end:
            found = self._scan.match(data, pos, end)
            if found is None:  # cannot happen: every byte starts a token the scanner knows
                raise TooComplex("unscannable bytes")
            if found.lastindex is None:
                return  # reached the end: nothing left that could be a wanted name
            name, string = found.group(1), found.group(2)
            slow[0] -= 1
            if slow[0] < 0:
                raise TooComplex("too many escaped names or deeply nested strings")
            if string is not None:
                pos = _string_end(data, found.end(), end)
                continue
            pos = found.end()
            if name is not None:
                decoded = _HEX_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), name)
                if decoded in self.wanted:
                    yield decoded


def _string_end(data: bytes, pos: int, end: int) -> int:
    depth = 1  # literal strings nest balanced parentheses; a backslash escapes one byte
    while depth and (found := _IN_STRING.search(data, pos, end)) is not None:
        char, pos = found.group(), found.end()
        if char == b"\\":
            pos += 1
        else:
            depth += 1 if char == b"(" else -1
            if depth > MAX_STRING_DEPTH:
                raise TooComplex(f"a string nested more than {MAX_STRING_DEPTH} deep")
    return pos if depth == 0 else end
