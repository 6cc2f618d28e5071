"""Bencode (BEP 3): a strict decoder with hard limits, raw spans of top-level values, an encoder.

Hand-written rather than ``fastbencode``: the v1 info hash is the SHA-1 of the info value's
*raw* bytes as they came in. A library that returns only decoded values makes us re-encode, and
re-encoding a non-canonical dict (unsorted keys, common in the wild) gives another hash. We also
need one exception type with a byte offset for every possible input, and depth, size and
token limits against hostile peers; those are a few lines here and wrappers around a library.

Strict mode (the default) accepts only canonical bencode. ``strict=False`` also accepts dict
keys out of order, which real torrents have; duplicate keys, leading zeros, ``-0``, short
strings and trailing bytes are refused in both modes, because each lets two parsers disagree.

Cost: about 1.5 µs a value, so ~0.8 s for a 100,000-file torrent and ~1 s and 64 MB for the
worst input the token limit lets through; piece hashes are one value, however long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from keel.bittorrented.errors import MalformedTorrent

Value: TypeAlias = int | bytes | list["Value"] | dict[bytes, "Value"]

# libtorrent's load_torrent_limits are 10 MB, depth 100 and 3M tokens. We take more bytes (long
# piece lists) but fewer tokens, since each token here is a Python object of 30-60 bytes:
# 1M tokens is at most ~70 MB of objects and still fits a torrent of ~120k files.
MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_TOKENS = 1_000_000
# Torrent integers fit in 64 bits (19 digits). The cap also keeps int() away from its own
# 4,300-digit limit, which raises ValueError rather than our error.
MAX_INT_DIGITS = 32
# Beyond this the recursive decoder could meet Python's recursion limit.
_DEPTH_CEILING = 256

_I, _L, _D, _E, _COLON, _MINUS = b"i"[0], b"l"[0], b"d"[0], b"e"[0], b":"[0], b"-"[0]
_ZERO, _NINE = b"0"[0], b"9"[0]


@dataclass(frozen=True, slots=True)
class Document:
    """A decoded top-level dictionary and where each of its values lies in the input."""

    value: dict[bytes, Value]
    spans: Mapping[bytes, tuple[int, int]]
    data: bytes

    def raw(self, key: bytes) -> bytes | None:
        """The exact input bytes of ``key``'s value, or None when the key is absent."""
        span = self.spans.get(key)
        return None if span is None else self.data[span[0] : span[1]]


def decode(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_tokens: int = MAX_TOKENS,
) -> Value:
    """Decode one bencoded value that spans all of ``data``.

    Raises ``MalformedTorrent`` (with ``offset``) for any input that is not valid bencode
    or exceeds a limit; never another exception.
    """
    decoder = _Decoder(data, strict, max_bytes, max_depth, max_tokens)
    value, end = decoder.value(0, 0)
    decoder.expect_end(end)
    return value


def decode_document(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_tokens: int = MAX_TOKENS,
) -> Document:
    """Decode a bencoded dictionary, keeping the raw byte span of each of its values.

    Raises ``MalformedTorrent`` as ``decode`` does, and when the top value is not a dict.
    """
    decoder = _Decoder(data, strict, max_bytes, max_depth, max_tokens)
    if decoder.data[:1] != b"d":
        raise MalformedTorrent("expected a dictionary", offset=0)
    spans: dict[bytes, tuple[int, int]] = {}
    decoder.count_token(0)
    value, end = decoder.dictionary(0, 1, spans)
    decoder.expect_end(end)
    return Document(value=value, spans=spans, data=decoder.data)


def encode(value: Value) -> bytes:
    """Canonical bencode of ``value``: dict keys sorted, text refused.

    Raises TypeError for a type bencode has no form for (str, float, bool, non-bytes keys)
    and ValueError for an integer longer than the decoder accepts.
    """
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: object, out: list[bytes]) -> None:
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans; use 0 or 1")
    if isinstance(value, int):
        text = str(value).encode("ascii")
        if len(text.lstrip(b"-")) > MAX_INT_DIGITS:
            raise ValueError(f"integer longer than {MAX_INT_DIGITS} digits")
        out += (b"i", text, b"e")
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += (str(len(raw)).encode("ascii"), b":", raw)
    elif isinstance(value, list | tuple):
        out.append(b"l")
        for item in value:
            _encode(item, out)
        out.append(b"e")
    elif isinstance(value, dict):
        if not all(isinstance(key, bytes) for key in value):
            raise TypeError("bencode dict keys must be bytes")
        out.append(b"d")
        for key in sorted(value):
            _encode(key, out)
            _encode(value[key], out)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


class _Decoder:
    """Recursive descent over one buffer; positions are byte offsets into it."""

    __slots__ = ("_end", "_max_depth", "_max_tokens", "_strict", "_tokens_left", "data")

    def __init__(
        self,
        data: bytes | bytearray | memoryview,
        strict: bool,
        max_bytes: int,
        max_depth: int,
        max_tokens: int,
    ) -> None:
        if not 0 < max_depth <= _DEPTH_CEILING:
            raise ValueError(f"max_depth must be in 1..{_DEPTH_CEILING}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"bencode decodes bytes, not {type(data).__name__}")
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        # Checked before bytes() so an oversized buffer is never copied.
        if size > max_bytes:
            raise MalformedTorrent(f"data is {size} bytes, over the limit of {max_bytes}")
        if not size:
            raise MalformedTorrent("empty data", offset=0)
        self.data = bytes(data)
        self._end = len(self.data)
        self._strict = strict
        self._max_depth = max_depth
        self._max_tokens = max_tokens
        self._tokens_left = max_tokens

    def expect_end(self, pos: int) -> None:
        if pos != self._end:
            raise MalformedTorrent("trailing data after the value", offset=pos)

    def count_token(self, pos: int) -> None:
        self._tokens_left -= 1
        if self._tokens_left < 0:
            raise MalformedTorrent(f"more than {self._max_tokens} values", offset=pos)

    def value(self, pos: int, depth: int) -> tuple[Value, int]:
        if pos >= self._end:
            raise MalformedTorrent("unexpected end of data", offset=pos)
        self.count_token(pos)
        first = self.data[pos]
        if first == _I:
            return self.integer(pos)
        if _ZERO <= first <= _NINE:
            return self.string(pos)
        if first == _L:
            return self.sequence(pos, depth + 1)
        if first == _D:
            return self.dictionary(pos, depth + 1, None)
        raise MalformedTorrent(f"unexpected byte {bytes([first])!r}", offset=pos)

    def integer(self, pos: int) -> tuple[int, int]:
        # 'i', an optional '-', at most MAX_INT_DIGITS digits, then 'e'.
        end = self.data.find(b"e", pos + 1, pos + MAX_INT_DIGITS + 3)
        if end < 0:
            raise MalformedTorrent("integer not terminated by 'e'", offset=pos)
        text = self.data[pos + 1 : end]
        negative = text[:1] == b"-"
        digits = text[1:] if negative else text
        # isdigit() on bytes is ASCII-only, and it refuses the spaces and '_' int() would take.
        if not digits.isdigit():
            raise MalformedTorrent("invalid integer", offset=pos)
        if digits[0] == _ZERO and (len(digits) > 1 or negative):
            raise MalformedTorrent("integer with a leading zero or -0", offset=pos)
        number = int(digits)
        return (-number if negative else number), end + 1

    def string(self, pos: int) -> tuple[bytes, int]:
        # 20 digits bound int()'s work; a length that long then fails the end-of-data check.
        colon = self.data.find(b":", pos, pos + 21)
        if colon < 0:
            raise MalformedTorrent("byte string length not terminated by ':'", offset=pos)
        digits = self.data[pos:colon]
        if not digits.isdigit():
            raise MalformedTorrent("invalid byte string length", offset=pos)
        if digits[0] == _ZERO and len(digits) > 1:
            raise MalformedTorrent("byte string length with a leading zero", offset=pos)
        length = int(digits)
        start = colon + 1
        stop = start + length
        if stop > self._end:
            raise MalformedTorrent(f"byte string of {length} bytes runs past the end", offset=pos)
        return self.data[start:stop], stop

    def sequence(self, pos: int, depth: int) -> tuple[list[Value], int]:
        self.check_depth(pos, depth)
        items: list[Value] = []
        cursor = pos + 1
        while True:
            if cursor >= self._end:
                raise MalformedTorrent("list not terminated by 'e'", offset=pos)
            if self.data[cursor] == _E:
                return items, cursor + 1
            item, cursor = self.value(cursor, depth)
            items.append(item)

    def dictionary(
        self, pos: int, depth: int, spans: dict[bytes, tuple[int, int]] | None
    ) -> tuple[dict[bytes, Value], int]:
        self.check_depth(pos, depth)
        result: dict[bytes, Value] = {}
        previous: bytes | None = None
        cursor = pos + 1
        while True:
            if cursor >= self._end:
                raise MalformedTorrent("dictionary not terminated by 'e'", offset=pos)
            if self.data[cursor] == _E:
                return result, cursor + 1
            if not _ZERO <= self.data[cursor] <= _NINE:
                raise MalformedTorrent("dictionary key is not a byte string", offset=cursor)
            self.count_token(cursor)
            key_at = cursor
            key, cursor = self.string(cursor)
            if key in result:
                raise MalformedTorrent(f"duplicate dictionary key {key[:64]!r}", offset=key_at)
            if self._strict and previous is not None and key < previous:
                raise MalformedTorrent(
                    f"dictionary key {key[:64]!r} out of sorted order", offset=key_at
                )
            previous = key
            value_at = cursor
            result[key], cursor = self.value(cursor, depth)
            if spans is not None:
                spans[key] = (value_at, cursor)

    def check_depth(self, pos: int, depth: int) -> None:
        if depth > self._max_depth:
            raise MalformedTorrent(f"nested deeper than {self._max_depth}", offset=pos)
