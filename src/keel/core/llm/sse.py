"""An incremental Server-Sent Events decoder for streamed chat completions.

Bytes arrive in chunks that split lines (and ``\\r\\n`` pairs) anywhere; :class:`SSEDecoder`
buffers across chunks and yields whole events, per the WHATWG event-stream rules: lines end
in ``\\r\\n``, ``\\n`` or ``\\r``; a blank line ends an event; ``data`` lines join with ``\\n``;
lines starting with ``:`` are comments (OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line this long is not a chat chunk: refuse it rather than buffer without bound.
MAX_LINE_CHARS = 1_000_000
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: its type (``message`` unless named) and its data."""

    data: str
    event: str = "message"


class SSEDecoder:
    """Feed text chunks in order; each call returns the events they completed."""

    def __init__(self) -> None:
        self._pending = ""  # an unfinished line, carried to the next chunk
        self._data: list[str] = []
        self._event = ""
        self.comments = 0  # keep-alive comments seen, for tests and debugging

    def feed(self, chunk: str) -> list[SSEEvent]:
        """Decode ``chunk``; returns the events it completed, in order."""
        text = self._pending + chunk
        events: list[SSEEvent] = []
        start = 0
        for ending in _LINE_END.finditer(text):
            if ending.group() == "\r" and ending.end() == len(text):
                break  # a "\r" last in the chunk may be half of "\r\n": wait for more
            event = self._line(text[start : ending.start()])
            if event is not None:
                events.append(event)
            start = ending.end()
        self._pending = text[start:]
        if len(self._pending) > MAX_LINE_CHARS:
            raise ValueError(f"an event-stream line longer than {MAX_LINE_CHARS} characters")
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: decode what is left; returns the events it completed."""
        events: list[SSEEvent] = []
        if self._pending:
            line = self._pending[:-1] if self._pending.endswith("\r") else self._pending
            self._pending = ""
            event = self._line(line)
            if event is not None:
                events.append(event)
        # The spec discards an event no blank line closed; providers that end a stream without
        # one are common enough that its data is kept instead.
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if self._data:
                return self._dispatch()
            self._event = ""  # an event with no data is not dispatched
            return None
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" matter to reconnecting browsers, not to one completion.
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(data="\n".join(self._data), event=self._event or "message")
        self._data = []
        self._event = ""
        return event
