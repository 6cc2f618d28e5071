"""Replays recorded provider responses from a real local HTTP server.

For providers with no local peer in any registry (price APIs, XRP, Cardano, Esplora): the
adapter under test talks HTTP to 127.0.0.1 exactly as it would to the provider, and this server
answers with what the provider once answered.

A recording is ``<root>/<provider>/<name>.json``, either one exchange::

    {"request":  {"method": "GET", "path": "/0/public/Ticker", "query": {"pair": "XBTUSD"}},
     "response": {"status": 200, "headers": {...},
                  "body": <JSON as the API sent it> | "body_text": "<raw text>"
                          | "body_hex": "<binary body, hex>",
                  "delay_seconds": 0.5}}

or several: ``{"exchanges": [{"request": ..., "response": ...}, ...]}``. A request may also name
the JSON body it must carry (``"json": {...}``; for a JSON-RPC body the ``id`` is left out of the
comparison and the response carries the request's own ``id``) or its exact bytes
(``"body_hex"``, for a binary body such as a transaction). When several exchanges match one
request they are served in order and the last one repeats, so a recording can show a chain tip
moving on.

``replay.url("kraken", "ticker_xbtusd")`` is a base URL serving that recording: a request to
``<url>/0/public/Ticker?pair=XBTUSD`` gets the recorded response; any other request is an
unmatched-request failure that the ``replay`` fixtures report at teardown. Numbers in ``body``
are replayed digit for digit (parsed as Decimal, written back verbatim).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


def dump_json(value: Any) -> str:
    """``json.dumps`` that writes a Decimal's digits exactly as recorded."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    return json.dumps(value)


def load_recording(root: Path, provider: str, name: str) -> list[dict[str, Any]]:
    """The exchanges of one recording, in order."""
    path = root / provider / f"{name}.json"
    recording: dict[str, Any] = json.loads(path.read_text("utf-8"), parse_float=Decimal)
    exchanges: list[dict[str, Any]] = recording.get("exchanges", [recording])
    return exchanges


@dataclass
class ReplayServer:
    """State shared with the handler threads."""

    root: Path
    base: str = ""
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    served: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, provider: str, name: str) -> str:
        load_recording(self.root, provider, name)  # fail fast on a typo
        return f"{self.base}/{provider}/{name}"

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.served.clear()
            self.unmatched.clear()


def _without_id(body: Any) -> Any:
    if isinstance(body, dict) and "jsonrpc" in body:
        return {k: v for k, v in body.items() if k != "id"}
    return body


def _matches(
    wanted: dict[str, Any], asked: tuple[str, str, dict[str, Any]], body: Any, raw: bytes
) -> bool:
    if asked != (wanted["method"], wanted["path"], wanted.get("query", {})):
        return False
    if "body_hex" in wanted and bytes.fromhex(wanted["body_hex"]) != raw:
        return False
    return "json" not in wanted or _without_id(wanted["json"]) == _without_id(body)


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
            exchanges = load_recording(state.root, provider, name)
        except (ValueError, OSError):
            self._fail(state, f"no recording for {self.command} {self.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
        asked = (self.command, "/" + rest, query)
        candidates = [
            i for i, x in enumerate(exchanges) if _matches(x["request"], asked, body, raw)
        ]
        if not candidates:
            self._fail(state, f"{provider}/{name}: unexpected request {asked} {body!r:.300}")
            return
        with state.lock:
            state.hits[(provider, name)] += 1
            # The first candidate not yet served, else the last one again.
            unserved = [i for i in candidates if not state.served[(provider, name, i)]]
            chosen = unserved[0] if unserved else candidates[-1]
            state.served[(provider, name, chosen)] += 1
        response = exchanges[chosen]["response"]
        if "body_text" in response:
            payload = response["body_text"].encode()
        elif "body_hex" in response:
            payload = bytes.fromhex(response["body_hex"])
        else:
            reply = response["body"]
            if isinstance(body, dict) and isinstance(reply, dict) and "jsonrpc" in reply:
                reply = {**reply, "id": body.get("id")}
            payload = dump_json(reply).encode()
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


@contextmanager
def serve_recordings(root: Path) -> Iterator[ReplayServer]:
    """A replay server of the recordings under ``root`` on a free 127.0.0.1 port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ReplayServer(root, base=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)


@contextmanager
def checked(server: ReplayServer) -> Iterator[ReplayServer]:
    """``server`` for one test: fails it if a request matched no recording."""
    server.reset()
    yield server
    assert server.unmatched == [], "requests with no matching recording"
