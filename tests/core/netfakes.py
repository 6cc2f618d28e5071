"""The internet as SSRF tests see it: a loopback HTTP server that answers as "a public site",
a DNS that names it by a public address, and a socket layer that carries that address to
loopback. Only what the guard vetted reaches the socket layer, which records every connect;
nothing leaves the machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore

from keel.core import netguard

PUBLIC_IP = "93.184.216.34"  # stands for the site on the internet; routed to loopback here


@dataclass
class Reply:
    """What the loopback server answers for a path."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # Sent after the headers, one after another, ``pause`` seconds apart (a slow or huge body).
    chunks: Iterable[bytes] = ()
    pause: float = 0.0


Route = Callable[[str], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        reply = self.server.route(self.path)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if not reply.chunks and "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            for chunk in reply.chunks:
                time.sleep(reply.pause)
                self.wfile.write(chunk)
                self.wfile.flush()
        except OSError:
            pass  # the client hung up: what a capped fetch does

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, route: Route) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.route = route
        self.paths: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def loopback_server(route: Route) -> Iterator[_Server]:
    """An HTTP/1.0 server on 127.0.0.1 (one connection per request) answering ``route``;
    ``.paths`` lists the paths it was asked for, ``.port`` its port."""
    server = _Server(route)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class RoutedNetwork(httpcore.AsyncNetworkBackend):
    """The socket layer under the guard: connects a routed (public) address to a loopback
    port, refuses everything else, and records every address it was handed."""

    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = routes
        self.connects: list[tuple[str, int]] = []
        self._sockets = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host not in self.routes:
            raise httpcore.ConnectError(f"tests reach no address but loopback ({host})")
        return await self._sockets.connect_tcp(
            "127.0.0.1", self.routes[host], timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._sockets.sleep(seconds)


def dns(answers: dict[str, list[str]], asked: list[str]) -> netguard.Lookup:
    """A lookup answering ``answers[name]`` (a name not there does not exist); ``asked``
    records every name looked up."""

    async def lookup(host: str, port: int) -> list[str]:
        asked.append(host)
        if host not in answers:
            raise netguard.UnresolvableHost(host, "does not resolve (test DNS)")
        return list(answers[host])

    return lookup


def rebinding_dns(name: str, answers: list[list[str]], asked: list[str]) -> netguard.Lookup:
    """A DNS-rebinding attacker's server for ``name``: each lookup gets the next of
    ``answers`` (the last repeats), typically a public address first, then loopback."""

    turns = iter(range(len(answers) - 1))

    async def lookup(host: str, port: int) -> list[str]:
        asked.append(host)
        if host != name:
            raise netguard.UnresolvableHost(host, "does not resolve (test DNS)")
        return list(answers[next(turns, len(answers) - 1)])

    return lookup
