"""Replays recorded provider responses from a real local HTTP server.

A recording is ``recordings/<provider>/<name>.json``::

    {"request":  {"method": "GET", "path": "/0/public/Ticker", "query": {"pair": "XBTUSD"}},
     "response": {"status": 200, "headers": {...},
                  "body": <JSON as the API sent it> | "body_text": "<raw text>",
                  "delay_seconds": 0.5}}

``replay.url("kraken", "ticker_xbtusd")`` is a base URL serving that recording: a request
to ``<url>/0/public/Ticker?pair=XBTUSD`` gets the recorded response; any other request
is an unmatched-request failure reported at teardown. Numbers in ``body`` are replayed
digit for digit (parsed as Decimal, written back verbatim).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

RECORDINGS = Path(__file__).parent / "recordings"

#: The fixed "now" of these tests: 2025-01-15T12:00:00Z (epoch 1736942400).
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def dump_json(value: Any) -> str:
    """``json.dumps`` that writes a Decimal's digits exactly as recorded."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    return json.dumps(value)


def load_recording(provider: str, name: str) -> dict[str, Any]:
    path = RECORDINGS / provider / f"{name}.json"
    recording: dict[str, Any] = json.loads(path.read_text("utf-8"), parse_float=Decimal)
    return recording


@dataclass
class ReplayServer:
    """State shared with the handler threads."""

    base: str = ""
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, provider: str, name: str) -> str:
        load_recording(provider, name)  # fail fast on a typo
        return f"{self.base}/{provider}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.unmatched.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._replay()

    def do_POST(self) -> None:
        self._replay()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _replay(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        segments = parts.path.split("/", 3)  # "", provider, name, rest
        try:
            _, provider, name, rest = segments
            recording = load_recording(provider, name)
        except (ValueError, OSError):
            self._fail(state, f"no recording for {self.command} {self.path}")
            return
        wanted = recording["request"]
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
        asked = (self.command, "/" + rest, query)
        if asked != (wanted["method"], wanted["path"], wanted.get("query", {})):
            self._fail(state, f"{provider}/{name}: unexpected request {asked}")
            return
        with state.lock:
            state.hits[(provider, name)] += 1
        response = recording["response"]
        if "body_text" in response:
            payload = response["body_text"].encode()
        else:
            payload = dump_json(response["body"]).encode()
        time.sleep(float(response.get("delay_seconds", 0)))
        try:
            self.send_response(response["status"])
            for header, value in response.get("headers", {}).items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def _fail(self, state: ReplayServer, message: str) -> None:
        with state.lock:
            state.unmatched.append(message)
        body = message.encode()
        self.send_response(599)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ReplayServer


@pytest.fixture(scope="session")
def _replay_server() -> Iterator[ReplayServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ReplayServer(base=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield server.state
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)


@pytest.fixture
def replay(_replay_server: ReplayServer) -> Iterator[ReplayServer]:
    """The replay server; fails the test if a provider sent a request nobody recorded."""
    _replay_server.reset()
    yield _replay_server
    assert _replay_server.unmatched == [], "requests with no matching recording"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A real client; ``trust_env=False`` so no proxy settings reroute 127.0.0.1."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def fixed_clock() -> datetime:
    return NOW
