"""pairux served for real: uvicorn on 127.0.0.1 (a free port) in the test's event loop, over
SQLite and (when configured) PostgreSQL, with WebSocket clients from ``websockets``."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from keel.core.app import Product, create_root_app
from keel.pairux.app import create_app
from keel.pairux.settings import PairuxSettings

TURN_SECRET = "north-wind-shared-secret"


def settings(**overrides: Any) -> PairuxSettings:
    """Test settings: generous limits (tests that need tight ones say so), TURN on loopback."""
    base: dict[str, Any] = {
        "rooms_per_ip": 10_000,
        "join_failures_per_ip": 10_000,
        "join_failures_global": 100_000,
        "turn_host": "127.0.0.1",
        "turn_secret": TURN_SECRET,
        "turn_tls": False,
    }
    return PairuxSettings(**{**base, **overrides})


@dataclass
class Server:
    base: str
    ws_url: str
    product: Product
    http: httpx.AsyncClient
    _stack: AsyncExitStack = field(repr=False)

    async def create(self, name: str = "Hana", **headers: str) -> dict[str, Any]:
        reply = await self.http.post(
            "/pairux/api/rooms", json={"display_name": name}, headers=headers
        )
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def join(self, code: str, name: str = "Vic") -> dict[str, Any]:
        reply = await self.http.post(
            "/pairux/api/rooms/join", json={"display_name": name, "code": code}
        )
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    async def peer(self, admitted: dict[str, Any]) -> Peer:
        """Connect and say hello with ``admitted``'s token; waits for the welcome."""
        peer = await self.connect()
        peer.id = admitted["participant"]["id"]
        peer.token = admitted["token"]
        await peer.send({"type": "hello", "token": peer.token})
        peer.welcome = await peer.expect("welcome")
        return peer

    async def connect(self) -> Peer:
        ws = await self._stack.enter_async_context(connect(self.ws_url, max_size=2**22))
        return Peer(ws)


@dataclass
class Peer:
    ws: ClientConnection
    id: str = ""
    token: str = ""
    welcome: dict[str, Any] = field(default_factory=dict)
    _probes: int = 0

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, wait: float = 3.0) -> dict[str, Any]:
        """The next message other than a ping."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), wait)
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") != "ping":
                return message

    async def expect(self, kind: str, wait: float = 3.0) -> dict[str, Any]:
        message = await self.recv(wait)
        assert message.get("type") == kind, message
        return message

    async def until(self, kind: str, wait: float = 5.0) -> dict[str, Any]:
        """The next message of ``kind``, skipping others."""
        while (message := await self.recv(wait))["type"] != kind:
            pass
        return message

    async def settle(self) -> list[dict[str, Any]]:
        """Everything the server queued for this peer so far: it answers a probe (an unknown
        message type) after every frame queued before it, so no timing is guessed."""
        self._probes += 1
        marker = f"probe-{self._probes}"
        await self.send({"type": marker})
        seen = []
        while True:
            message = await self.recv()
            if message.get("type") == "error" and marker in message.get("message", ""):
                return seen
            seen.append(message)

    async def closed_with(self, wait: float = 5.0) -> int | None:
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), wait)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


@asynccontextmanager
async def serving(
    config: PairuxSettings, tmp_path: Path, db_url: str | None = None
) -> AsyncIterator[Server]:
    if db_url is not None:
        config = config.model_copy(update={"database_url": db_url})
    product = create_app(config, data_dir=str(tmp_path))
    server = uvicorn.Server(
        uvicorn.Config(
            create_root_app([product]), log_level="warning", lifespan="on", ws="websockets-sansio"
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
            )
            yield Server(
                f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/pairux/ws", product, http, stack
            )
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def server(db_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    """pairux on SQLite and PostgreSQL."""
    async with serving(settings(), tmp_path, db_url) as running:
        yield running


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[Server]:
    """pairux on SQLite only (for tests about the socket, not the database)."""
    async with serving(settings(), tmp_path) as running:
        yield running
