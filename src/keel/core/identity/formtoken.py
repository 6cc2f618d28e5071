"""The CSRF token of a form, read from its body by a middleware that must hand the body on.

* ``application/x-www-form-urlencoded``: the whole body is read (forms are small) and the
  ``csrf_token`` field may be anywhere.
* ``multipart/form-data``: only the *first* part is read, and it must be ``csrf_token`` (our
  templates put the hidden field first; browsers send fields in document order). So an upload
  streams on to its route, unread, after the first few hundred bytes.

Both parsers read bytes from anyone: malformed input means "no token", never an exception.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from keel.core.identity.csrf import FIELD, MAX_TOKEN_CHARS

MAX_FIRST_PART_BYTES = 16 * 1024  # a first part not over by then is not our token
_MAX_FIELDS = 10_000


def from_urlencoded(body: bytes) -> str | None:
    """The first ``csrf_token`` field of an urlencoded body, or None."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "replace"),
            keep_blank_values=True,
            max_num_fields=_MAX_FIELDS,
            errors="replace",
        )
    except ValueError:  # more fields than max_num_fields
        return None
    for name, value in pairs:
        if name == FIELD:
            return value
    return None


class FirstPart:
    """Reads a multipart/form-data body chunk by chunk until its first part is complete.

    ``feed`` returns True once the answer is known; ``token`` is then the first part's value
    if that part is the ``csrf_token`` field, else None.
    """

    def __init__(self, content_type: str) -> None:
        self.token: str | None = None
        self._seen = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._field = b""
        self._value = b""
        self._data = bytearray()
        self._done = False
        _kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary", b"")
        self._parser: MultipartParser | None = None
        if not boundary or len(boundary) > 70:  # RFC 2046 caps a boundary at 70 characters
            self._done = True
            return
        self._parser = MultipartParser(
            boundary,
            {
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    def feed(self, chunk: bytes) -> bool:
        if self._done or self._parser is None:
            return True
        self._seen += len(chunk)
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            self._done = True
        if self._seen > MAX_FIRST_PART_BYTES:
            self._done = True
        return self._done

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers.append((self._field.lower(), self._value))
        self._field, self._value = b"", b""

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._done and len(self._data) <= MAX_TOKEN_CHARS:
            self._data += data[start:end]

    def _on_part_end(self) -> None:
        if self._done:
            return
        self._done = True
        disposition = dict(self._headers).get(b"content-disposition")
        if disposition is None:
            return
        kind, options = parse_options_header(disposition)
        if kind == b"form-data" and options.get(b"name") == FIELD.encode():
            self.token = self._data.decode("utf-8", "replace")
