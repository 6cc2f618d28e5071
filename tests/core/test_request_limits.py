"""Request limits every product gets from the root app: bodies (413), headers (431 from us, the
server's own cap beyond), unknown paths (404) and methods (405 with the right Allow), all as
problem+json; the head limits are checked against a real uvicorn on loopback, as `keel serve`
runs it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict
from pydantic_settings import SettingsConfigDict

from keel.core.app import (
    MAX_HEAD_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    PROBLEM_JSON,
    Product,
    RequestContextMiddleware,
    allow_body_bytes,
    create_root_app,
    install_problem_handlers,
)
from keel.core.server import SERVER_LIMITS
from keel.core.settings import KeelSettings

LIMIT = 64 * 1024
TEN_MB = 10 * 2**20


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str


class Shop:
    """A tiny product: it counts what it stores, so a refused request visibly stores nothing."""

    def __init__(self) -> None:
        self.stored = 0
        self.app = FastAPI()
        install_problem_handlers(self.app, extras=lambda _s, _c, d: {"success": False, "error": d})
        self.app.add_middleware(RequestContextMiddleware, app_name="shop")

        @self.app.post("/orders")
        async def create_order(order: Order) -> dict[str, str]:
            self.stored += 1
            return {"item": order.item}

        @self.app.get("/orders")
        async def list_orders() -> dict[str, int]:
            return {"stored": self.stored}

        @self.app.post("/uploads")
        async def upload(request: Request) -> dict[str, int]:
            allow_body_bytes(request, 4 * LIMIT)
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
            self.stored += 1
            return {"size": size}

    def product(self) -> Product:
        @asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            yield

        async def ready() -> bool:
            return True

        return Product(name="shop", app=self.app, lifespan=lifespan, ready=ready)


@pytest.fixture
def shop() -> Shop:
    return Shop()


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    root = create_root_app([shop.product()], max_body_bytes=LIMIT)
    transport = httpx.ASGITransport(app=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as c:
        yield c


def assert_problem(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text[:300]
    assert reply.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert body["code"] == code
    return body


def big_json(size: int) -> bytes:
    return b'{"item": "x", "unknown": "' + b"a" * size + b'"}'


def chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def streamed(data: bytes) -> AsyncIterator[bytes]:
    for part in chunks(data):
        yield part


async def test_a_body_over_the_limit_is_a_413_problem_and_stores_nothing(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    headers = {"content-type": "application/json"}
    declared = await client.post("/shop/orders", content=big_json(TEN_MB), headers=headers)
    body = assert_problem(declared, 413, "body_too_large")
    assert body["success"] is False  # rendered by the product, with its fields
    chunked = await client.post("/shop/orders", content=streamed(big_json(TEN_MB)), headers=headers)
    assert "content-length" not in chunked.request.headers  # sent chunked
    assert_problem(chunked, 413, "body_too_large")
    assert shop.stored == 0


async def test_a_lying_content_length_does_not_get_past_the_count() -> None:
    shop = Shop()
    root = create_root_app([shop.product()], max_body_bytes=LIMIT)
    payload = big_json(2 * LIMIT)
    sent: list[dict[str, Any]] = []
    messages = [
        {"type": "http.request", "body": part, "more_body": True} for part in chunks(payload)
    ]
    messages[-1]["more_body"] = False

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/shop/orders",
        "raw_path": b"/shop/orders",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")],
        "server": ("keel.test", 80),
    }
    await root(scope, receive, send)
    assert sent[0]["status"] == 413
    assert shop.stored == 0


async def test_bodies_up_to_the_limit_and_route_allowances_pass(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    ok = await client.post("/shop/orders", json={"item": "a" * (LIMIT - 100)})
    assert ok.status_code == 200, ok.text
    upload = await client.post("/shop/uploads", content=streamed(b"u" * (3 * LIMIT)))
    assert upload.json() == {"size": 3 * LIMIT}
    too_big = await client.post("/shop/uploads", content=b"u" * (5 * LIMIT))
    assert_problem(too_big, 413, "body_too_large")
    assert shop.stored == 2


async def test_unknown_fields_are_a_400_naming_them(client: httpx.AsyncClient) -> None:
    reply = await client.post("/shop/orders", json={"item": "a", "colour": "red", "size": 9})
    body = assert_problem(reply, 400, "invalid_request")
    assert body["detail"] == "Unknown fields: colour, size"


# "/" itself is the front door (tests/test_root_app.py); "/%0A" is not.
@pytest.mark.parametrize("path", ["/nope", "/shopx", "/shop%0A", "/%0A"])
async def test_paths_no_product_serves_are_a_problem_404(
    client: httpx.AsyncClient, path: str
) -> None:
    assert_problem(await client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/shop/orders/%0A", "/shop/x%0Ay", "/shop/%0A/orders"])
async def test_every_path_under_a_product_is_the_products(
    client: httpx.AsyncClient, path: str
) -> None:
    body = assert_problem(await client.get(path), 404, "not_found")
    assert body["success"] is False  # the product's 404, not the root's


async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    for method in ("OPTIONS", "PUT", "DELETE"):
        reply = await client.request(method, "/shop/orders")
        assert_problem(reply, 405, "method_not_allowed")
        assert reply.headers["allow"] == "GET, POST"


async def test_too_many_or_too_long_headers_are_a_431_problem(client: httpx.AsyncClient) -> None:
    many = [(f"x-h{i}", "v") for i in range(MAX_HEADERS + 1)]
    assert_problem(await client.get("/shop/orders", headers=many), 431, "headers_too_large")
    long_line = {"x-long": "v" * MAX_HEADER_BYTES}
    assert_problem(await client.get("/shop/orders", headers=long_line), 431, "headers_too_large")
    lines = MAX_HEAD_BYTES // 6000 + 1
    long_head = {f"x-part{i}": "v" * 6000 for i in range(lines)}
    assert_problem(await client.get("/shop/orders", headers=long_head), 431, "headers_too_large")
    fine = [(f"x-h{i}", "v" * 100) for i in range(MAX_HEADERS - 10)]
    assert (await client.get("/shop/orders", headers=fine)).status_code == 200


def test_the_body_limit_is_a_process_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    class Fresh(KeelSettings):
        model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore", env_file=None)

    assert Fresh().max_body_bytes == 2**20
    monkeypatch.setenv("KEEL_MAX_BODY_BYTES", "5000000")
    assert Fresh().max_body_bytes == 5_000_000


# --- Against a real uvicorn on loopback, configured as `keel serve` configures it ------------


@pytest.fixture
async def server(shop: Shop) -> AsyncIterator[tuple[str, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_root_app([shop.product()], max_body_bytes=LIMIT),
        host="127.0.0.1",
        port=port,
        log_level="critical",
        lifespan="off",
        **SERVER_LIMITS,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn has no startup event to wait on
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        await task


async def raw_request(
    address: tuple[str, int], head: bytes, body: bytes = b""
) -> tuple[int, bytes]:
    """Send bytes as they are, reading the reply meanwhile (a server may answer and hang up
    before it has read everything); the status and the reply's bytes."""
    reader, writer = await asyncio.open_connection(*address)
    received = bytearray()

    async def read() -> None:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionError:
            pass

    reading = asyncio.create_task(read())
    try:
        for part in (head, *chunks(body)):
            writer.write(part)
            await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed: its reply is what counts
    await asyncio.wait_for(reading, timeout=10)
    writer.close()
    reply = bytes(received)
    assert reply.startswith(b"HTTP/1.1 "), reply[:100]
    return int(reply.split(b" ", 2)[1]), reply


def head(*headers: bytes, method: bytes = b"GET", path: bytes = b"/shop/orders") -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"host: keel.test", b"connection: close"]
    return b"\r\n".join([*lines, *headers]) + b"\r\n\r\n"


# The server itself refuses these (400, before the app sees them): the head is never buffered
# whole. The app's 431 is for heads within the server's cap.
async def test_the_server_refuses_a_1_mb_header(server: tuple[str, int]) -> None:
    status, reply = await raw_request(server, head(b"x-big: " + b"a" * 2**20))
    assert status == 400
    assert b"Request head too large" in reply


async def test_the_server_refuses_10000_headers(server: tuple[str, int]) -> None:
    many = [f"x-h{i}: v".encode() for i in range(10_000)]
    status, reply = await raw_request(server, head(*many))
    assert status == 400
    assert b"Request head too large" in reply


async def test_a_keep_alive_connection_gets_a_fresh_head_budget(server: tuple[str, int]) -> None:
    # Ten requests with 18 KiB heads on one connection: each within both caps, together far
    # past the server's.
    reader, writer = await asyncio.open_connection(*server)
    pads = [f"x-pad{i}: ".encode() + b"a" * (6 * 1024) for i in range(3)]
    padded = head(*pads, path=b"/healthz")
    try:
        for _ in range(10):
            writer.write(padded.replace(b"connection: close", b"connection: keep-alive"))
            await writer.drain()
            assert (await reader.readline()).startswith(b"HTTP/1.1 200 ")
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
    finally:
        writer.close()


async def test_a_head_within_the_servers_cap_but_over_ours_is_a_431_problem(
    server: tuple[str, int],
) -> None:
    many = [f"x-h{i}: v".encode() for i in range(MAX_HEADERS + 50)]
    status, reply = await raw_request(server, head(*many))
    assert status == 431
    assert b"application/problem+json" in reply
    status, reply = await raw_request(server, head(b"x-long: " + b"a" * (MAX_HEADER_BYTES + 1)))
    assert status == 431


async def test_the_server_refuses_a_10_mb_body_sent_chunked_or_declared(
    server: tuple[str, int], shop: Shop
) -> None:
    payload = big_json(TEN_MB)
    declared = head(
        b"content-type: application/json",
        f"content-length: {len(payload)}".encode(),
        method=b"POST",
    )
    status, reply = await raw_request(server, declared, payload)
    assert status == 413
    assert b"application/problem+json" in reply
    chunked_body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks(payload)) + b"0\r\n\r\n"
    chunked = head(b"content-type: application/json", b"transfer-encoding: chunked", method=b"POST")
    status, reply = await raw_request(server, chunked, chunked_body)
    assert status == 413
    assert shop.stored == 0
