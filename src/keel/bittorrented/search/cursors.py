"""Keyset cursors handed to clients: signed, so only cursors this server issued are read back,
and range-checked, so no decoded value reaches SQL outside its column's range.

A cursor is ``<payload>.<tag>``, both unpadded URL-safe base64. The payload is the JSON list
``[scope, order, value, ...]`` (scope: a sort name, or ``files``); the tag is the first 16
bytes of HMAC-SHA256 over it under the server's cursor key, checked before anything is parsed.
Every process that serves the same index must share the key (``KEEL_BITTORRENTED_CURSOR_SECRET``
or the key file under the data directory), or cursors from one are refused by another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Final

from keel.bittorrented.errors import BadCursor
from keel.bittorrented.search.base import Order, Sort
from keel.bittorrented.search.ranking import MAX_SEEDERS

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# The values each sort's column can hold (models.torrent_search): seeders are clamped to
# [0, MAX_SEEDERS] when stored, sizes and relevance keys are never negative, dates are any
# BIGINT. Ids are BIGINT identities, so positive.
KEY_RANGES: Final[dict[Sort, tuple[int, int]]] = {
    "relevance": (0, INT64_MAX),
    "seeders": (0, MAX_SEEDERS),
    "size": (0, INT64_MAX),
    "date": (INT64_MIN, INT64_MAX),
}
ID_RANGE: Final = (1, INT64_MAX)
FILES: Final = "files"
_TAG_BYTES: Final = 16
_DOMAIN: Final = b"keel.bittorrented.cursor\x00"
_NOT_OURS: Final = "cursor is not one this server issued"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    # validate=True: a stray character is an error, never silently skipped.
    padded = text.encode("ascii") + b"=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


@dataclass(frozen=True, slots=True)
class Cursors:
    """Issues and reads back the keyset cursors of one index, under its cursor key."""

    key: bytes = field(repr=False)

    def search(self, sort: Sort, order: Order, after: tuple[int, int]) -> str:
        """The cursor of a search page whose last hit has (sort value, id) ``after``."""
        return self._encode(sort, order, after)

    def search_after(self, cursor: str, sort: Sort, order: Order) -> tuple[int, int]:
        """The (sort value, id) ``cursor`` points after; BadCursor unless this server issued it
        for this sort and order."""
        value, row_id = self._decode(cursor, sort, order, (KEY_RANGES[sort], ID_RANGE))
        return value, row_id

    def files(self, after: int) -> str:
        """The cursor of a file-search page whose last hit has id ``after``."""
        return self._encode(FILES, "desc", (after,))

    def files_after(self, cursor: str) -> int:
        """The file id ``cursor`` points after; BadCursor unless this server issued it."""
        (row_id,) = self._decode(cursor, FILES, "desc", (ID_RANGE,))
        return row_id

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self.key, _DOMAIN + payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def _encode(self, scope: str, order: str, values: tuple[int, ...]) -> str:
        payload = json.dumps([scope, order, *values], separators=(",", ":")).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._tag(payload))}"

    def _decode(
        self, cursor: str, scope: str, order: str, ranges: tuple[tuple[int, int], ...]
    ) -> tuple[int, ...]:
        encoded_payload, dot, encoded_tag = cursor.partition(".")
        if not dot:
            raise BadCursor(_NOT_OURS)
        try:
            payload, tag = _b64decode(encoded_payload), _b64decode(encoded_tag)
        except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            raise BadCursor(_NOT_OURS) from exc
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise BadCursor(_NOT_OURS)
        # Signed by us, so well formed unless the format changed under it: checked anyway.
        try:
            decoded = json.loads(payload)
        except ValueError as exc:
            raise BadCursor(_NOT_OURS) from exc
        if not isinstance(decoded, list) or len(decoded) != 2 + len(ranges):
            raise BadCursor(_NOT_OURS)
        if decoded[:2] != [scope, order]:
            raise BadCursor("cursor was issued for another sort order")
        values = tuple(decoded[2:])
        for value, (low, high) in zip(values, ranges, strict=True):
            if type(value) is not int or not low <= value <= high:
                raise BadCursor(_NOT_OURS)
        return values
