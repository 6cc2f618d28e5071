"""The libtorrent session bittorrented runs: its settings, the magnet metadata source, crawls.

The session is opened lazily, on the first magnet that needs peers, so `keel serve` opens no
DHT socket until someone asks for one (and tests that never submit a magnet open none).
"""

from __future__ import annotations

import asyncio

from keel.bittorrented.dht.fetcher import MetadataFetcher
from keel.bittorrented.dht.session import (
    PUBLIC_BOOTSTRAP_NODES,
    DhtSession,
    Endpoint,
    SessionSettings,
    start_session,
)
from keel.bittorrented.errors import SwarmUnavailable
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.torrent.values import Magnet, Metainfo
from keel.core import netguard
from keel.core.logging import get_logger

log = get_logger("keel.bittorrented.dht.runtime")


def parse_endpoint(text: str) -> Endpoint:
    """``host:port`` (``[v6]:port``) as an endpoint; ValueError saying what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


def session_settings(settings: BittorrentedSettings) -> SessionSettings:
    """The session our settings describe. A loopback listener can only meet loopback peers,
    where every node is 127.0.0.1, so it takes the loopback profile (no per-IP limits)."""
    if netguard.is_loopback(settings.dht_listen_host):
        return SessionSettings.loopback(settings.dht_port)
    return SessionSettings(
        listen_host=settings.dht_listen_host,
        listen_port=settings.dht_port,
        bootstrap_nodes=PUBLIC_BOOTSTRAP_NODES if settings.dht_bootstrap else (),
    )


def swarm_for(settings: BittorrentedSettings) -> Swarm:
    """The (not yet started) session our settings describe."""
    return Swarm(
        session_settings(settings),
        max_files=settings.max_files,
        nodes=tuple(parse_endpoint(n) for n in settings.dht_nodes),
    )


class Swarm:
    """Our one libtorrent session, started on first use and shared by magnet fetches and the
    crawler (two sessions would fight over the DHT port).

    It is also the indexer's :class:`~keel.bittorrented.indexer.MetadataSource`.
    """

    def __init__(
        self, settings: SessionSettings, *, max_files: int, nodes: tuple[Endpoint, ...] = ()
    ) -> None:
        self.settings = settings
        # Joined as ordinary nodes, not bootstrap routers: a router never enters the routing
        # table, so a small DHT reached only through it stays invisible.
        self._nodes = nodes
        self._max_files = max_files
        self._lock = asyncio.Lock()
        self._session: DhtSession | None = None
        self._fetcher: MetadataFetcher | None = None

    async def start(self) -> tuple[DhtSession, MetadataFetcher]:
        """The running session and its fetcher (started now if need be)."""
        async with self._lock:
            if self._session is None or self._fetcher is None:
                self._session = await start_session(self.settings)
                self._session.add_nodes(self._nodes)
                self._fetcher = MetadataFetcher(
                    self._session, max_files=self._max_files, source="magnet"
                )
            return self._session, self._fetcher

    async def fetch(self, link: Magnet, *, timeout_seconds: float) -> Metainfo | None:
        """The magnet's metadata from its trackers and the DHT, or None when none came in time.

        Raises SwarmUnavailable when the session cannot start (its port is taken, say): that is
        this server's trouble, not the caller's, and it may pass.
        """
        try:
            _, fetcher = await self.start()
        except OSError as exc:
            # The listen address is ours to know; the reply names only the condition.
            log.warning("swarm_unavailable", error=str(exc))
            raise SwarmUnavailable() from exc
        outcome = await fetcher.fetch(
            link.info_hash, trackers=link.trackers, timeout_seconds=timeout_seconds, use_dht=True
        )
        return outcome.metainfo if outcome.fetched else None

    async def aclose(self) -> None:
        async with self._lock:
            if self._fetcher is not None:
                await self._fetcher.aclose()
            if self._session is not None:
                await self._session.close()
            self._fetcher = self._session = None
