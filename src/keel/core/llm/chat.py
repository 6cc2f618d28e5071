"""One exchange with an OpenAI-compatible ``/chat/completions`` endpoint.

:func:`complete` sends a request and returns the answer's text, streamed (SSE) or whole,
whichever the server chose to send. Every failure is one of three kinds, because each calls
for a different next move (see ``openai_compatible``):

ChatFailure
├── ProviderDown     timeout, connection error, 408/429/5xx, a mid-stream error frame or a
│                    malformed reply: the server is in trouble (counts in the breaker)
├── ModelRefused     another 4xx: this model will not serve this request (try the next one)
└── AccountRefused   401/402/403: our key or account is refused (no model will do better)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from keel.core.llm.sse import SSEDecoder, SSEEvent

# A whole (non-streamed) reply larger than this is not an answer.
BODY_MAX_BYTES: Final = 2_000_000
# An answer longer than this is a runaway: reading stops and it ends with finish "length".
ANSWER_MAX_CHARS: Final = 200_000
ERROR_BODY_MAX_BYTES: Final = 4000
# Waits longer than this that a server asks for are treated as "not today".
RETRY_AFTER_MAX_SECONDS: Final = 3600.0
_DETAIL_MAX = 300


class ChatFailure(Exception):
    """One chat exchange failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderDown(ChatFailure):
    """The server failed or asked us to back off (``retry_after`` seconds, when it said)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ModelRefused(ChatFailure):
    """The server refused this request for this model (bad parameter, unknown model)."""


class AccountRefused(ChatFailure):
    """The server refused our credentials or account (key, credits, permissions)."""


@dataclass(frozen=True)
class ChatTimeouts:
    """``connect`` and ``read`` (longest silence between bytes) bound each network phase;
    ``answer`` bounds the whole exchange, so a server trickling bytes cannot hold us."""

    connect: float
    read: float
    answer: float


@dataclass(frozen=True)
class ChatAnswer:
    """The assistant's text, the model the server says answered, and why it stopped."""

    content: str
    model: str
    finish_reason: str | None
    # total_tokens when the server reported usage (OpenRouter and OpenAI do in the last
    # frame when asked: ``stream_options: {include_usage: true}``), else None.
    tokens: int | None = None


TextCallback = Callable[[str], Awaitable[None]]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), capped; None if
    absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def _error_detail(raw: bytes) -> str:
    """The provider's own error message from a JSON error body, else the start of the body."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:_DETAIL_MAX]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:_DETAIL_MAX]
    if isinstance(error, str):
        return error[:_DETAIL_MAX]
    return " ".join(text.split())[:_DETAIL_MAX]


def _status_failure(status: int, raw: bytes, headers: httpx.Headers) -> ChatFailure:
    detail = f"HTTP {status}: {_error_detail(raw)}"
    if status in (408, 429) or status >= 500:
        return ProviderDown(
            detail, status=status, retry_after=parse_retry_after(headers.get("retry-after"))
        )
    if status in (401, 402, 403):
        return AccountRefused(detail, status=status)
    if 400 <= status < 500:
        return ModelRefused(detail, status=status)
    return ProviderDown(f"unexpected {detail}", status=status)


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            break
    return bytes(body[:limit])


def _frame_error(frame: Mapping[str, Any]) -> str | None:
    """The error a frame or body carries (OpenRouter reports mid-stream failures this way)."""
    error = frame.get("error")
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "error")[:_DETAIL_MAX]
    return str(error)[:_DETAIL_MAX]


def _first_choice(frame: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = frame.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _tokens(frame: Mapping[str, Any]) -> int | None:
    usage = frame.get("usage")
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


def _whole_answer(raw: bytes, requested_model: str, max_chars: int) -> ChatAnswer:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ProviderDown("the reply is not JSON") from exc
    if not isinstance(body, dict):
        raise ProviderDown("the reply is not a JSON object")
    error = _frame_error(body)
    if error is not None:
        raise ProviderDown(f"the provider reported an error: {error}")
    choice = _first_choice(body)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ProviderDown("the reply holds no message")
    finish = choice.get("finish_reason")
    if finish == "error":
        raise ProviderDown("the provider stopped with an error")
    return ChatAnswer(
        content=_text(message.get("content"))[:max_chars],
        model=_text(body.get("model")) or requested_model,
        finish_reason=finish if isinstance(finish, str) else None,
        tokens=_tokens(body),
    )


async def _streamed_answer(
    response: httpx.Response,
    requested_model: str,
    on_text: TextCallback | None,
    max_chars: int = ANSWER_MAX_CHARS,
) -> ChatAnswer:
    decoder = SSEDecoder()
    parts: list[str] = []
    size = 0
    model = ""
    finish: str | None = None
    tokens: int | None = None

    async def take(frames: list[SSEEvent]) -> bool:
        """Apply decoded events; True once the stream says it is done."""
        nonlocal size, model, finish, tokens
        for event in frames:
            if event.data == "[DONE]":
                return True
            try:
                frame = json.loads(event.data)
            except ValueError as exc:
                raise ProviderDown("a stream frame is not JSON") from exc
            if not isinstance(frame, dict):
                raise ProviderDown("a stream frame is not a JSON object")
            error = _frame_error(frame)
            if error is not None:
                raise ProviderDown(f"the provider failed mid-answer: {error}")
            model = model or _text(frame.get("model"))
            tokens = _tokens(frame) or tokens
            choice = _first_choice(frame)
            delta = choice.get("delta")
            piece = _text(delta.get("content")) if isinstance(delta, dict) else ""
            if piece:
                parts.append(piece)
                size += len(piece)
                if on_text is not None:
                    await on_text(piece)
            reason = choice.get("finish_reason")
            if reason == "error":
                raise ProviderDown("the provider stopped mid-answer with an error")
            if isinstance(reason, str):
                finish = reason
            if size > max_chars:
                finish = "length"  # a runaway answer: stop reading, let validation say so
                return True
        return False

    try:
        done = False
        async for chunk in response.aiter_text():
            if await take(decoder.feed(chunk)):
                done = True
                break
        if not done:
            await take(decoder.close())
    except ValueError as exc:  # an unbounded line (SSEDecoder)
        raise ProviderDown(str(exc)) from exc
    return ChatAnswer(
        content="".join(parts)[:max_chars],
        model=model or requested_model,
        finish_reason=finish,
        tokens=tokens,
    )


async def complete(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
    timeouts: ChatTimeouts,
    on_text: TextCallback | None = None,
    max_chars: int = ANSWER_MAX_CHARS,
) -> ChatAnswer:
    """POST ``body`` to ``url`` and return the answer; ``on_text`` gets each streamed piece.
    An answer is cut at ``max_chars`` (finish reason ``length``).

    Raises :class:`ProviderDown`, :class:`ModelRefused` or :class:`AccountRefused`.
    """
    model = str(body.get("model", ""))
    timeout = httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
    )
    try:
        async with (
            asyncio.timeout(timeouts.answer),
            client.stream("POST", url, headers=headers, json=body, timeout=timeout) as response,
        ):
            if response.status_code != 200:
                raw = await _read_capped(response, ERROR_BODY_MAX_BYTES)
                raise _status_failure(response.status_code, raw, response.headers)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                return await _streamed_answer(response, model, on_text, max_chars)
            raw = await _read_capped(response, BODY_MAX_BYTES + 1)
            if len(raw) > BODY_MAX_BYTES:
                raise ProviderDown(f"the reply is larger than {BODY_MAX_BYTES} bytes")
            return _whole_answer(raw, model, max_chars)
    except TimeoutError as exc:
        raise ProviderDown(f"no complete answer within {timeouts.answer:g} s") from exc
    except httpx.TimeoutException as exc:
        raise ProviderDown(f"timed out: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise ProviderDown(f"request failed: {type(exc).__name__}: {exc}") from exc
