"""libtorrent sessions built from typed settings: public for a real crawl, loopback for tests.

The settings go to the session's constructor, never through ``apply_settings()`` later: the
defaults would listen on every interface, bootstrap from a public router and turn on LSD, UPnP
and NAT-PMP for the moments in between. :meth:`SessionSettings.loopback` holds the settings the
loopback swarm needs (see ``shared/reference/python-stack.md``, "libtorrent on loopback"):
every node shares 127.0.0.1, so per-IP routing limits and rate limits must be lifted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import libtorrent as lt

from keel.bittorrented.dht.alerts import AlertPump

__all__ = [
    "PUBLIC_BOOTSTRAP_NODES",
    "DhtSession",
    "Endpoint",
    "SessionSettings",
    "open_session",
    "settings_pack",
    "start_session",
]

Endpoint = tuple[str, int]

# The routers mainstream clients bootstrap from; only a production crawl uses them.
PUBLIC_BOOTSTRAP_NODES: tuple[Endpoint, ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
    ("dht.libtorrent.org", 25401),
)

_CATEGORY = lt.alert.category_t
# error: metadata_failed, alerts_dropped; status: metadata_received, torrent_removed, listen;
# dht_operation: sample_infohashes and get_peers replies. Not dht (a get_peers_alert for every
# lookup anyone routes through us) and not peer (one alert per connection attempt).
ALERT_MASK = (
    _CATEGORY.error_notification
    | _CATEGORY.status_notification
    | _CATEGORY.dht_operation_notification
)
STATS_TIMEOUT_SECONDS = 5.0
LISTEN_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How one libtorrent session (one DHT node, one BitTorrent peer) listens and behaves.

    The defaults are for a public crawl on bitmagnet's DHT port; use :meth:`loopback` in tests.
    Sizes are bytes, times seconds.
    """

    listen_host: str = "0.0.0.0"
    listen_port: int = 3334  # 0: any free port (TCP, uTP and the DHT's UDP share it)
    bootstrap_nodes: tuple[Endpoint, ...] = PUBLIC_BOOTSTRAP_NODES
    # One routing-table entry per IP defends a public node against Sybils; on loopback every
    # node is 127.0.0.1, so it must be off there.
    restrict_routing_ips: bool = True
    # DHT messages per second a source IP may send before it is blocked (libtorrent: 5).
    block_ratelimit: int = 5
    # How long this node's own BEP 51 sample stays the same (libtorrent: 6 hours).
    sample_infohashes_interval_seconds: int = 21600
    # libtorrent's 8000 B/s DHT upload cap is for a client; a crawler asks far more.
    dht_upload_rate_limit_bytes: int = 64_000
    # An info dict larger than this is refused (libtorrent: 30 MiB); huge ones are spam.
    max_metadata_bytes: int = 10 * 1024 * 1024
    # libtorrent refuses a second connection from an IP it is already connected to, and then
    # waits a minute before redialling: on loopback, where every peer is 127.0.0.1, that
    # makes a fetch soon after another from the same seeder time out.
    allow_multiple_connections_per_ip: bool = False
    alert_queue_size: int = 100_000
    connections_limit: int = 400
    # bitmagnet: 3 s to dial a peer, 6 s per metadata request.
    peer_connect_timeout_seconds: int = 3
    # libtorrent waits this long (times the failures) before redialling a peer that failed,
    # 60 s by default: longer than a whole metadata fetch, so a peer whose first dial failed
    # (busy, or its torrent still loading) would never be asked again within the fetch.
    min_reconnect_seconds: int = 2
    handshake_timeout_seconds: int = 6

    @classmethod
    def loopback(cls, port: int = 0) -> SessionSettings:
        """Settings for a node of a swarm on 127.0.0.1 only: no bootstrap, no per-IP limits."""
        return cls(
            listen_host="127.0.0.1",
            listen_port=port,
            bootstrap_nodes=(),
            restrict_routing_ips=False,
            block_ratelimit=100_000,
            sample_infohashes_interval_seconds=0,  # a fresh random sample on every query
            allow_multiple_connections_per_ip=True,
        )

    def with_port(self, port: int) -> SessionSettings:
        """The same settings listening on ``port``."""
        return dataclasses.replace(self, listen_port=port)


def _interface(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def settings_pack(settings: SessionSettings) -> lt.settings_pack:
    """The libtorrent settings for ``settings`` (everything discovery-related set explicitly)."""
    return {
        "listen_interfaces": _interface(settings.listen_host, settings.listen_port),
        "enable_dht": True,
        "dht_bootstrap_nodes": ",".join(
            _interface(host, port) for host, port in settings.bootstrap_nodes
        ),
        # Nothing that reaches out on its own: no multicast, no router port mapping.
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "dht_restrict_routing_ips": settings.restrict_routing_ips,
        "dht_block_ratelimit": settings.block_ratelimit,
        "dht_sample_infohashes_interval": settings.sample_infohashes_interval_seconds,
        "dht_upload_rate_limit": settings.dht_upload_rate_limit_bytes,
        "max_metadata_size": settings.max_metadata_bytes,
        "allow_multiple_connections_per_ip": settings.allow_multiple_connections_per_ip,
        "alert_queue_size": settings.alert_queue_size,
        "alert_mask": ALERT_MASK,
        "connections_limit": settings.connections_limit,
        "peer_connect_timeout": settings.peer_connect_timeout_seconds,
        "min_reconnect_time": settings.min_reconnect_seconds,
        "handshake_timeout": settings.handshake_timeout_seconds,
    }


def _endpoint_from_compact(data: bytes) -> Endpoint | None:
    # BEP 5 compact node info: 4 (IPv4) or 16 (IPv6) address bytes, then a big-endian port.
    if len(data) not in (6, 18):
        return None
    address = ipaddress.ip_address(data[:-2])
    return str(address), int.from_bytes(data[-2:], "big")


class DhtSession:
    """A running libtorrent session with its one :class:`AlertPump` (``alerts``).

    Build it with :func:`open_session` (or :func:`start_session` and ``close()``). Every part
    that needs alerts subscribes to ``alerts``; nothing else may call ``pop_alerts()``.
    """

    def __init__(self, raw: lt.session, settings: SessionSettings, *, poll_ms: int = 100) -> None:
        self._raw: lt.session | None = raw
        self.settings = settings
        self.alerts = AlertPump(raw, poll_ms=poll_ms)
        self._stats_waiters: list[asyncio.Future[dict[str, int]]] = []
        self.alerts.subscribe(lt.session_stats_alert, self._on_stats)

    @property
    def native(self) -> lt.session:
        """The libtorrent session (for adapters in this package); RuntimeError once closed."""
        if self._raw is None:
            raise RuntimeError("the session is closed")
        return self._raw

    @property
    def port(self) -> int:
        """The port the session listens on (TCP, uTP and DHT)."""
        return self.native.listen_port()

    @property
    def endpoint(self) -> Endpoint:
        """``(listen host, port)``: how other nodes of a loopback swarm reach this one."""
        return self.settings.listen_host, self.port

    def add_nodes(self, endpoints: Iterable[Endpoint]) -> None:
        """Ping ``endpoints`` into the routing table (how a loopback swarm forms a full mesh)."""
        for endpoint in endpoints:
            if endpoint != self.endpoint:
                self.native.add_dht_node(endpoint)

    def routing_table(self) -> list[Endpoint]:
        """The nodes in this session's DHT routing table, as ``(ip, port)``."""
        flags = lt.save_state_flags_t.save_dht_state
        state = lt.write_session_params(self.native.session_state(flags), flags)
        dht = state.get(b"dht state") or {}
        found: list[Endpoint] = []
        for key in (b"nodes", b"nodes6"):
            for compact in dht.get(key) or ():
                endpoint = _endpoint_from_compact(compact)
                if endpoint is not None:
                    found.append(endpoint)
        return found

    async def stats(self) -> dict[str, int]:
        """libtorrent's session counters, e.g. ``dht.dht_nodes``; TimeoutError after 5 s."""
        waiter: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
        self._stats_waiters.append(waiter)
        self.native.post_session_stats()
        try:
            async with asyncio.timeout(STATS_TIMEOUT_SECONDS):
                return await waiter
        finally:
            if waiter in self._stats_waiters:
                self._stats_waiters.remove(waiter)

    async def dht_node_count(self) -> int:
        """How many nodes the DHT routing table holds now."""
        return (await self.stats()).get("dht.dht_nodes", 0)

    def _on_stats(self, alert: lt.session_stats_alert) -> None:
        values = dict(alert.values)
        waiters, self._stats_waiters = self._stats_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(values)

    async def close(self) -> None:
        """Stop the alert pump, then shut libtorrent down off the loop (it blocks ~0.2 s)."""
        if self._raw is None:
            return
        await self.alerts.stop()
        await asyncio.to_thread(self._release)

    def _release(self) -> None:
        # The destructor of the last reference stops libtorrent's threads; dropping it here
        # (the stopped pump let go of its own) makes that happen on this worker thread.
        self._raw = None


async def start_session(settings: SessionSettings, *, poll_ms: int = 100) -> DhtSession:
    """Start a session with ``settings`` and its alert pump; the caller must ``close()`` it.

    Raises OSError if libtorrent cannot listen on the interface (e.g. the port is taken).
    """
    pack = settings_pack(settings)
    raw = await asyncio.to_thread(lt.session, lt.session_params(pack))
    deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
    # A crawler that cannot listen gets no DHT replies at all; fail at start, not silently.
    while not (raw.is_listening() and raw.listen_port()):
        if time.monotonic() > deadline:
            await asyncio.to_thread(_drop, [raw])
            raise OSError(f"libtorrent could not listen on {pack['listen_interfaces']}")
        await asyncio.sleep(0.01)
    session = DhtSession(raw, settings, poll_ms=poll_ms)
    session.alerts.start()
    return session


def _drop(sessions: list[lt.session]) -> None:
    sessions.clear()  # the last reference: libtorrent shuts down on this thread


@asynccontextmanager
async def open_session(
    settings: SessionSettings, *, poll_ms: int = 100
) -> AsyncIterator[DhtSession]:
    """A running :class:`DhtSession` for the ``async with`` block, closed on the way out."""
    session = await start_session(settings, poll_ms=poll_ms)
    try:
        yield session
    finally:
        await session.close()
