"""Peers of an info hash from the DHT (BEP 5 ``get_peers``), for the metadata fetch to dial.

One ``dht_get_peers`` call makes libtorrent walk the DHT towards the hash; every node that
answers with peers yields a ``dht_get_peers_reply_alert``. A lookup ends shortly after the
first peers arrive (more trickle in from nearer nodes) or at its timeout with none.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import libtorrent as lt

from keel.bittorrented.dht import metrics
from keel.bittorrented.dht.nodes import is_public
from keel.bittorrented.dht.session import DhtSession, Endpoint

__all__ = ["PeerFinder"]


@dataclass(slots=True)
class _Lookup:
    max_peers: int
    peers: dict[Endpoint, None] = field(default_factory=dict)  # insertion-ordered set
    found: asyncio.Event = field(default_factory=asyncio.Event)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class PeerFinder:
    """Runs get_peers lookups on one :class:`DhtSession`, many at a time.

    ``allow_private`` keeps peers on private and loopback addresses (a loopback swarm);
    otherwise only global addresses are returned, so an answer cannot point us into our own
    network. Call ``close()`` when done.
    """

    def __init__(self, session: DhtSession, *, allow_private: bool = False) -> None:
        self._session = session
        self.allow_private = allow_private
        self._lookups: defaultdict[bytes, list[_Lookup]] = defaultdict(list)
        self._unsubscribe = session.alerts.subscribe(lt.dht_get_peers_reply_alert, self._on_reply)

    async def find(
        self,
        info_hash: bytes,
        *,
        timeout_seconds: float = 4.0,
        grace_seconds: float = 0.5,
        max_peers: int = 50,
    ) -> list[Endpoint]:
        """Peers of ``info_hash``: waits up to ``timeout_seconds`` for the first, then up to
        ``grace_seconds`` more (or until ``max_peers``). An empty list means none answered."""
        lookup = _Lookup(max_peers=max_peers)
        self._lookups[info_hash].append(lookup)
        try:
            self._session.native.dht_get_peers(lt.sha1_hash(info_hash))
            try:
                async with asyncio.timeout(timeout_seconds):
                    await lookup.found.wait()
            except TimeoutError:
                metrics.PEER_LOOKUPS.labels("none").inc()
                return []
            try:
                async with asyncio.timeout(grace_seconds):
                    await lookup.full.wait()
            except TimeoutError:
                pass
            metrics.PEER_LOOKUPS.labels("found").inc()
            return list(lookup.peers)[:max_peers]
        finally:
            lookups = self._lookups.get(info_hash)
            if lookups is not None:
                lookups.remove(lookup)
                if not lookups:
                    del self._lookups[info_hash]

    def close(self) -> None:
        """Stop listening for replies."""
        self._unsubscribe()

    def _on_reply(self, alert: lt.dht_get_peers_reply_alert) -> None:
        lookups = self._lookups.get(alert.info_hash.to_bytes())
        if not lookups:
            return
        own = self._session.endpoint
        peers = [
            peer
            for peer in alert.peers()
            if peer != own and (self.allow_private or is_public(peer))
        ]
        if not peers:
            return
        for lookup in lookups:
            lookup.peers.update(dict.fromkeys(peers))
            lookup.found.set()
            if len(lookup.peers) >= lookup.max_peers:
                lookup.full.set()
