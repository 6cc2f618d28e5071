"""coturn on loopback for pairux tests: the TURN server a relay-only viewer connects through.

Debian's ``coturn`` (``turnserver``) runs in the foreground on free 127.0.0.1 ports with the
TURN REST mechanism (``use-auth-secret``: a username ``<expiry>:<id>`` and its base64 HMAC-SHA1
under the shared secret), a fresh random secret per run, no TLS, and relay ports from a small
range. ``allow-loopback-peers`` lets it relay to the host agent on 127.x (off in production: it
would let a TURN client reach the server's own loopback services).

Where the binary is missing the tests skip, except under ``KEEL_TEST_CHAIN_NODES=1`` or
``CI=true`` (as ``.ci/run`` sets them), where they fail: CI never silently skips a real peer.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.chains_nodes import free_port, need_node

READY_SECONDS = 10.0
REALM = "keel.test"


@dataclass
class Coturn:
    """A running coturn: where it listens, its shared secret and realm, and its log."""

    port: int
    secret: str = field(repr=False)
    realm: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def udp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=tcp"

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def turnserver_binary() -> str | None:
    return shutil.which("turnserver")


@contextmanager
def run_coturn(workdir: Path, *, relay_ports: int = 40) -> Iterator[Coturn]:
    """coturn listening on 127.0.0.1 (UDP and TCP) until the block ends."""
    binary = turnserver_binary()
    if binary is None:
        raise FileNotFoundError("turnserver (Debian package coturn) is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port, secret = free_port(), secrets.token_hex(16)
    relay_low = free_port()  # a free ephemeral port: the range above it is very likely free too
    config = workdir / "turnserver.conf"
    log = workdir / "turnserver.log"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={relay_low}",
                f"max-port={relay_low + relay_ports}",
                "use-auth-secret",
                f"static-auth-secret={secret}",
                f"realm={REALM}",
                "no-tls",
                "no-dtls",
                "allow-loopback-peers",
                "no-cli",
                "fingerprint",
                "no-multicast-peers",
                "simple-log",
                f"log-file={log}",
                f"pidfile={workdir / 'turnserver.pid'}",
                f"userdb={workdir / 'turnserver.db'}",
                "",
            ]
        )
    )
    with (workdir / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    server = Coturn(port, secret, REALM, process, log)
    try:
        _wait_listening(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_listening(server: Coturn) -> None:
    """Until coturn accepts TCP on its port (it opens UDP and TCP together)."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"coturn exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.03)
    raise RuntimeError(f"coturn not listening in {READY_SECONDS} s:\n{server.log_tail()}")


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A coturn of this test's own on 127.0.0.1."""
    if turnserver_binary() is None:
        need_node("turnserver (Debian coturn)")
    with run_coturn(tmp_path / "coturn") as server:
        yield server
