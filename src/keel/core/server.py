"""How ``keel serve`` runs uvicorn: httptools' fast parser, with the bound on a request head
that uvicorn's httptools protocol does not have.

uvicorn's h11 protocol refuses a head past ``h11_max_incomplete_event_size``, but h11 parses in
Python and cost the payment GET about a sixth of its throughput; uvicorn's httptools protocol
parses in C but buffers a head of any size (a 1 MB header, 10,000 headers). This protocol
answers 400 and closes once a head passes ``MAX_HEAD_BYTES``: counted as bytes arrive while the
head is incomplete (so nothing past the cap and one read is ever buffered), and as the parsed
URL and header lines (so a whole head arriving in one read is held to the same cap). Below the
cap, ``keel.core.app.RequestLimitsMiddleware`` answers 431 for too many or too long headers,
with a problem+json body.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
_TOO_LARGE = "Request head too large"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that refuses a request head past ``MAX_HEAD_BYTES``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._arrived = 0  # bytes received since this request's head began
        self._parsed = 0  # bytes of its URL and header lines parsed so far
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._arrived += len(data)
        super().data_received(data)
        over = self._parsed > MAX_HEAD_BYTES or (self._in_head and self._arrived > MAX_HEAD_BYTES)
        if over and not self.transport.is_closing():
            self._refused = True
            self.send_400_response(_TOO_LARGE)

    def on_url(self, url: bytes) -> None:
        self._parsed += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._parsed > MAX_HEAD_BYTES:
            self._refused = True  # answered in data_received; the app never sees it
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        # A keep-alive connection's next request starts with a head of its own.
        self._in_head, self._arrived, self._parsed = True, 0, 0


# Everything `keel serve` passes to uvicorn about HTTP parsing.
SERVER_LIMITS: dict[str, Any] = {"http": BoundedHttpToolsProtocol}
