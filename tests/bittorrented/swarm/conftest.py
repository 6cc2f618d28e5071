"""A real tracker and a real swarm on 127.0.0.1, started once for every test that asks.

``opentracker`` (Debian's build, whitelist mode) listens on one random port for HTTP and UDP;
a libtorrent session seeds a v1-only torrent it made and announces it there and to a small
libtorrent DHT (full mesh, loopback-safe settings). A few synthetic peers announce over HTTP so
the counts are more than 0/1: the tracker then holds ``SEEDERS`` seeders and ``LEECHERS``
leechers for the torrent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes

import httpx
import libtorrent as lt
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from tests.conftest import POSTGRES_URL, _admin, need_service

SYNTHETIC_SEEDERS = 4
SYNTHETIC_LEECHERS = 2
SEEDERS = 1 + SYNTHETIC_SEEDERS  # the libtorrent seeder and the synthetic ones
LEECHERS = SYNTHETIC_LEECHERS
DHT_NODES = 3
SETUP_SECONDS = 10.0


def synthetic_hash(seed: str) -> bytes:
    """A hash the tracker whitelists but nobody announces: it must scrape as 0/0."""
    return hashlib.sha1(f"swarm-test:{seed}".encode(), usedforsecurity=False).digest()


QUIET = synthetic_hash("quiet")


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (opentracker takes the same number)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def loopback_settings(port: int) -> lt.settings_pack:
    """libtorrent settings that keep a session on 127.0.0.1 (shared/reference/python-stack.md)."""
    return {
        "listen_interfaces": f"127.0.0.1:{port}",
        "enable_dht": True,
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        # Every node shares 127.0.0.1: lift the per-IP routing and rate limits.
        "dht_restrict_routing_ips": False,
        "dht_block_ratelimit": 100_000,
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
    }


@dataclass(frozen=True)
class Tracker:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def http_announce(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def udp_announce(self) -> str:
        return f"udp://127.0.0.1:{self.port}/announce"


@dataclass(frozen=True)
class Swarm:
    """The tracker, the DHT nodes (``host:port``), and the seeded torrent."""

    tracker: Tracker
    dht_nodes: list[str]
    info: lt.torrent_info
    sessions: list[lt.session]

    @property
    def info_hash(self) -> bytes:
        return bytes(self.info.info_hashes().v1.to_bytes())


def _announce(tracker: Tracker, info_hash: bytes, port: int, *, left: int) -> None:
    query = (
        f"info_hash={quote_from_bytes(info_hash, safe='')}&peer_id=-KT0001-{port:012d}"
        f"&port={port}&uploaded=0&downloaded=0&left={left}&compact=1&event=started"
    )
    reply = httpx.get(f"{tracker.http_announce}?{query}", timeout=2.0)
    assert reply.status_code == 200, reply.content
    assert b"failure" not in reply.content, reply.content


def _make_torrent(parent: Path, tracker_url: str) -> lt.torrent_info:
    root = parent / "swarm-test-payload"
    root.mkdir()
    (root / "a.bin").write_bytes(os.urandom(64 * 1024))
    (root / "b.txt").write_bytes(b"keel swarm test\n" * 100)
    creator = lt.create_torrent(lt.list_files(str(root)), 0, lt.create_torrent.v1_only)
    creator.add_tracker(tracker_url)
    lt.set_piece_hashes(creator, str(parent))
    return lt.torrent_info(creator.generate())


def _start_tracker(workdir: Path, port: int, hashes: list[bytes]) -> Tracker:
    # opentracker chroots into -d and drops to "nobody" before reading the whitelist, so the
    # directory and file must be readable by anyone, and the path is inside the chroot.
    workdir.mkdir()
    (workdir / "whitelist").write_text("".join(f"{h.hex()}\n" for h in hashes))
    workdir.chmod(0o755)
    (workdir / "whitelist").chmod(0o644)
    command = [
        shutil.which("opentracker") or "opentracker",
        *("-i", "127.0.0.1", "-p", str(port), "-P", str(port)),
        *("-d", str(workdir), "-w", "/whitelist", "-u", "nobody"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tracker = Tracker(port, process)
    deadline = time.monotonic() + SETUP_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return tracker
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else b""
                raise RuntimeError(f"opentracker did not start: {output!r}") from None
            time.sleep(0.02)


def _wait_for(session: lt.session, what: str, *, within: float = SETUP_SECONDS) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        session.wait_for_alert(50)
        for alert in session.pop_alerts():
            if alert.what() == what:
                return
            if alert.what() == "tracker_error":
                raise RuntimeError(alert.message())
    raise RuntimeError(f"no {what} within {within} s")


def _mesh(sessions: list[lt.session], ports: list[int]) -> None:
    for index, session in enumerate(sessions):
        for other, port in enumerate(ports):
            if other != index:
                session.add_dht_node(("127.0.0.1", port))


@pytest.fixture(scope="session")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    if shutil.which("opentracker") is None:
        need_service("opentracker (apt-get install opentracker)")
    workdir = tmp_path_factory.mktemp("swarm")
    port = free_port()
    info = _make_torrent(workdir, f"http://127.0.0.1:{port}/announce")
    info_hash = bytes(info.info_hashes().v1.to_bytes())
    tracker = _start_tracker(workdir / "tracker", port, [info_hash, QUIET])
    ports = [free_port() for _ in range(DHT_NODES)]
    sessions = [lt.session(loopback_settings(p)) for p in ports]
    try:
        _mesh(sessions, ports)
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = str(workdir)
        # Both flags must go, or the torrent stays paused and never announces.
        params.flags = (params.flags | lt.torrent_flags.seed_mode) & ~(
            lt.torrent_flags.paused | lt.torrent_flags.auto_managed
        )
        sessions[0].add_torrent(params)
        _wait_for(sessions[0], "tracker_reply")
        for n in range(SYNTHETIC_SEEDERS):
            _announce(tracker, info_hash, 40_000 + n, left=0)
        for n in range(SYNTHETIC_LEECHERS):
            _announce(tracker, info_hash, 41_000 + n, left=1000)
        yield Swarm(tracker, [f"127.0.0.1:{p}" for p in ports], info, sessions)
    finally:
        tracker.process.terminate()
        try:
            tracker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            tracker.process.kill()
        if tracker.process.stdout:
            tracker.process.stdout.close()
        for session in sessions:
            session.pause()
        del sessions[:]


async def _create_database(name: str) -> None:
    admin = await _admin(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await _admin(POSTGRES_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def swarm_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database per module and engine: creating and dropping a PostgreSQL database per
    test cost ~2 s each, more than all these tests together."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/swarm.db"
        return
    if not POSTGRES_URL:
        need_service("KEEL_TEST_POSTGRES_URL")
    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_database(name))
    yield str(make_url(POSTGRES_URL).set(database=name, drivername="postgresql+asyncpg"))
    asyncio.run(_drop_database(name))


@pytest.fixture
async def bt_engine(swarm_db_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated database of ``tests/bittorrented/conftest.py``, emptied of torrents
    (everything keyed on them cascades) instead of created anew for each test."""
    engine = await bootstrap.open_database(swarm_db_url)
    async with engine.begin() as conn:
        await conn.execute(models.torrents.delete())
        await conn.execute(models.torrent_sources.delete())
    yield engine
    await engine.dispose()
