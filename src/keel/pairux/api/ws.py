"""The signaling WebSocket (``/pairux/ws``): the first message authenticates
(``{"type": "hello", "token": "pxp_…"}``), then the hub routes.

The token never rides in the URL (query strings end up in access logs and proxies; the
original leaked its SSE token that way). Close codes: 4001 no valid hello in time, 4008 no
heartbeat, 4009 replaced by a newer connection, 4010 room ended, 4013 receiving too slowly,
4429 rate limits exceeded persistently.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from keel.core.errors import KeelError
from keel.pairux import metrics
from keel.pairux.api import deps
from keel.pairux.bootstrap import Pairux
from keel.pairux.signaling import hub as signaling
from keel.pairux.signaling import messages

router = APIRouter()


class _Socket:
    """Starlette's WebSocket as the hub's Connection."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send_text(self, data: str) -> None:
        await self.websocket.send_text(data)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.websocket.close(code, reason)


async def _refuse(websocket: WebSocket, code: str, message: str) -> None:
    metrics.ERRORS.labels(code).inc()
    metrics.CLOSES.labels(str(signaling.CLOSE_UNAUTHENTICATED)).inc()
    with contextlib.suppress(Exception):
        await websocket.send_text(
            messages.encode({"type": "error", "code": code, "message": message})
        )
        await websocket.close(signaling.CLOSE_UNAUTHENTICATED, message[:120])


async def _hello(websocket: WebSocket, wired: Pairux) -> str | None:
    """The token of the first message, or None after refusing the connection."""
    try:
        first = await asyncio.wait_for(websocket.receive(), wired.settings.hello_timeout_seconds)
    except TimeoutError:
        await _refuse(websocket, "hello_timeout", "send hello with your token first")
        return None
    text = first.get("text")
    if first["type"] != "websocket.receive" or not isinstance(text, str):
        await _refuse(websocket, "invalid_message", "the first message is a JSON text hello")
        return None
    if len(text) > wired.settings.message_max_bytes:
        await _refuse(websocket, "too_large", "hello is too large")
        return None
    try:
        hello = messages.parse(text)
    except messages.BadMessage as exc:
        await _refuse(websocket, "invalid_message", str(exc))
        return None
    if not isinstance(hello, messages.Hello):
        await _refuse(websocket, "hello_expected", "send hello with your token first")
        return None
    return hello.token


@router.websocket("/ws")
async def signaling_socket(websocket: WebSocket) -> None:
    """Signaling for one participant (see ``keel.pairux.signaling.messages``)."""
    wired = deps.pairux(websocket)
    await websocket.accept()
    token = await _hello(websocket, wired)
    if token is None:
        return
    hub = wired.hub
    try:
        session = await hub.attach(token, _Socket(websocket))
    except KeelError as exc:
        await _refuse(websocket, exc.code, exc.detail)
        return

    async def read() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                session.error("invalid_message", "binary frames are not accepted")
                continue
            await hub.receive(session, text)

    reader = asyncio.create_task(read())
    writer = asyncio.create_task(session.pump())
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
        await hub.detach(session)
