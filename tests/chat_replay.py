"""``tests.replay`` for chat-completion providers: it also keeps every request it received and
can stream a response in pieces.

The recording format is ``tests.replay``'s, with three additions:

* a request may name ``"json_subset"``: top-level fields the JSON body must carry with these
  values (``{"model": "primary/model"}``), where ``"json"`` would demand the whole body;
* a response may give ``"split_at"``: byte offsets at which its body is cut into pieces that
  are written and flushed separately, ``"chunk_delay_seconds"`` apart (no Content-Length, the
  connection closes at the end, as a streamed completion does), so the client sees lines,
  JSON and UTF-8 characters split across reads;
* ``"stall_seconds"``: how long to hold the connection open after the last piece, for body
  timeouts.

``server.received`` lists what was asked (method, path, lower-cased headers, JSON body), so
a test can assert the ``model`` a fallback request named or the headers a key added.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.replay import ReplayServer, dump_json, load_recording

__all__ = ["ChatReplayServer", "Received", "serve_chat_recordings"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def model(self) -> str:
        return str(self.body["model"])


@dataclass
class ChatReplayServer(ReplayServer):
    received: list[Received] = field(default_factory=list)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.received.clear()

    def asked(self, provider: str, name: str) -> list[Received]:
        prefix = f"/{provider}/{name}/"
        return [r for r in self.received if r.path.startswith(prefix)]


def _matches(wanted: dict[str, Any], method: str, path: str, body: Any) -> bool:
    if (wanted["method"], wanted["path"]) != (method, path):
        return False
    subset = wanted.get("json_subset", {})
    return all(isinstance(body, dict) and body.get(k) == v for k, v in subset.items())


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._replay()

    def do_GET(self) -> None:
        self._replay()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _replay(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        with state.lock:
            state.received.append(Received(self.command, self.path, headers, body))
        try:
            _, provider, name, rest = urlsplit(self.path).path.split("/", 3)
            exchanges = load_recording(state.root, provider, name)
        except (ValueError, OSError):
            self._fail(f"no recording for {self.command} {self.path}")
            return
        candidates = [
            i
            for i, x in enumerate(exchanges)
            if _matches(x["request"], self.command, "/" + rest, body)
        ]
        if not candidates:
            self._fail(f"{provider}/{name}: unexpected request {self.command} /{rest}")
            return
        with state.lock:
            state.hits[(provider, name)] += 1
            unserved = [i for i in candidates if not state.served[(provider, name, i)]]
            chosen = unserved[0] if unserved else candidates[-1]
            state.served[(provider, name, chosen)] += 1
        self._respond(exchanges[chosen]["response"])

    def _respond(self, response: dict[str, Any]) -> None:
        if "body_text" in response:
            payload = response["body_text"].encode()
        else:
            payload = dump_json(response["body"]).encode()
        time.sleep(float(response.get("delay_seconds", 0)))
        cuts = [int(at) for at in response.get("split_at", [])]
        try:
            self.send_response(response["status"])
            for header, value in response.get("headers", {}).items():
                self.send_header(header, value)
            if not cuts:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.flush()
            start = 0
            for end in [*cuts, len(payload)]:
                self.wfile.write(payload[start:end])
                self.wfile.flush()
                start = end
                if end != len(payload):
                    time.sleep(float(response.get("chunk_delay_seconds", 0.01)))
            time.sleep(float(response.get("stall_seconds", 0)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def _fail(self, message: str) -> None:
        state = self.server.state
        with state.lock:
            state.unmatched.append(message)
        body = message.encode()
        self.send_response(599)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ChatReplayServer


@contextmanager
def serve_chat_recordings(root: Path) -> Iterator[ChatReplayServer]:
    """A chat replay server of the recordings under ``root`` on a free 127.0.0.1 port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ChatReplayServer(root, base=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
