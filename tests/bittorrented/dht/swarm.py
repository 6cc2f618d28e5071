"""A BitTorrent swarm on 127.0.0.1: libtorrent sessions in a DHT full mesh, seeding torrents
the test made. Every session uses ``SessionSettings.loopback()`` (no bootstrap node, no LSD,
UPnP or NAT-PMP, a free port), so nothing leaves loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

from keel.bittorrented.dht import session as dht_session
from keel.bittorrented.dht.session import DhtSession

MESH_SECONDS = 10.0
POLL_SECONDS = 0.05


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], *, within: float, what: str
) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Seeded:
    """A torrent a swarm node seeds, and what the index should read from it."""

    info: lt.torrent_info
    seeder: DhtSession
    name: str
    files: dict[str, int]  # path relative to the name -> size, pad files left out

    @property
    def info_hash(self) -> bytes:
        return self.info.info_hashes().v1.to_bytes()

    @property
    def peer(self) -> tuple[str, int]:
        return self.seeder.endpoint


def make_torrent(
    parent: Path, name: str, files: Mapping[str, bytes], *, hybrid: bool = False
) -> lt.torrent_info:
    """Write ``files`` under ``parent/name`` (one file named ``name`` if ``files`` has only
    the key ``""``) and hash them into a v1-only torrent (one info hash, no pad files), or a
    v1+v2 hybrid (two DHT keys, pad files between the files)."""
    root = parent / name
    if set(files) == {""}:
        root.write_bytes(files[""])
    else:
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
    flags = 0 if hybrid else lt.create_torrent.v1_only
    creator = lt.create_torrent(lt.list_files(str(root)), 0, flags)
    lt.set_piece_hashes(creator, str(parent))
    return lt.torrent_info(creator.generate())


@dataclass
class Swarm:
    """Sessions on 127.0.0.1 in a DHT full mesh; ``seed`` makes one of them seed a torrent."""

    workdir: Path
    nodes: list[DhtSession] = field(default_factory=list)

    async def add_node(self) -> DhtSession:
        """Start a session, mesh it with every node, and wait until all tables are full."""
        node = await dht_session.start_session(dht_session.SessionSettings.loopback())
        self.nodes.append(node)
        self._mesh()
        await self.wait_for_mesh()
        return node

    async def grow(self, count: int) -> None:
        started = await asyncio.gather(
            *(
                dht_session.start_session(dht_session.SessionSettings.loopback())
                for _ in range(count)
            )
        )
        self.nodes.extend(started)
        self._mesh()
        await self.wait_for_mesh()

    def _mesh(self) -> None:
        endpoints = [node.endpoint for node in self.nodes]
        for node in self.nodes:
            node.add_nodes(endpoints)

    async def wait_for_mesh(self) -> None:
        want = len(self.nodes) - 1

        async def complete() -> bool:
            counts = await asyncio.gather(*(n.dht_node_count() for n in self.nodes))
            return min(counts) >= want

        await eventually(complete, within=MESH_SECONDS, what=f"every node knows {want} nodes")

    def seed(
        self, seeder: DhtSession, name: str, files: Mapping[str, bytes], *, hybrid: bool = False
    ) -> Seeded:
        """Create a torrent from ``files`` and seed it from ``seeder`` (it announces at once)."""
        parent = self.workdir / f"seed-{len(list(self.workdir.iterdir()))}"
        parent.mkdir()
        return self.seed_existing(seeder, make_torrent(parent, name, files, hybrid=hybrid), parent)

    def seed_existing(self, seeder: DhtSession, info: lt.torrent_info, parent: Path) -> Seeded:
        """Seed a torrent ``make_torrent`` wrote under ``parent`` from ``seeder``."""
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = str(parent)
        # Fresh params are paused and auto-managed: clear both or it never announces.
        params.flags = (params.flags | lt.torrent_flags.seed_mode) & ~(
            lt.torrent_flags.paused | lt.torrent_flags.auto_managed
        )
        seeder.native.add_torrent(params)
        layout = info.layout()
        prefix = info.name() + "/"
        pad = lt.file_storage.flag_pad_file
        sizes = {
            layout.file_path(i).removeprefix(prefix): layout.file_size(i)
            for i in range(layout.num_files())
            if not layout.file_flags(i) & pad
        }
        return Seeded(info=info, seeder=seeder, name=info.name(), files=sizes)

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes))
        self.nodes.clear()


@asynccontextmanager
async def swarm(workdir: Path, size: int) -> AsyncIterator[Swarm]:
    """A meshed swarm of ``size`` loopback sessions, closed on the way out."""
    result = Swarm(workdir)
    try:
        await result.grow(size)
        yield result
    finally:
        await result.close()
