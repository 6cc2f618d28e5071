"""The DHT nodes a crawler asks for BEP 51 samples, each no sooner than it allows.

BEP 51 replies carry ``interval``: how long the node's sample stays the same. Asking again
sooner only returns the same hashes, so each node is due again after its interval (clamped to
bounds of our own). Nodes come from the routing table and from the ``nodes`` field of every
reply, which is how a crawl spreads over the DHT; a node that stops answering is dropped.
"""

from __future__ import annotations

import heapq
import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from keel.bittorrented.dht.session import Endpoint
from keel.core import netguard

__all__ = ["NodePool", "is_public"]


def is_public(endpoint: Endpoint) -> bool:
    """True for a public IP (by ``keel.core.netguard``, the one policy) and a non-zero port: an
    address worth querying on the DHT.

    Replies are untrusted: a ``nodes`` field full of private addresses would otherwise turn the
    crawler into a scanner of its own network, and so would an IPv6 form that embeds one
    (``2002:a00:1::1``, 6to4 of 10.0.0.1, which ``ipaddress``'s ``is_global`` accepts).
    """
    host, port = endpoint
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return 0 < port < 65536 and netguard.is_public_ip(address)


@dataclass(slots=True)
class _Node:
    due: float
    unanswered: int = 0
    entry: int = 0  # sequence number of the node's live heap entry


class NodePool:
    """Known DHT nodes with the time each is next due for a sample query.

    Holds at most ``max_nodes`` (new ones are ignored while full; silent nodes make room). A
    node asked ``max_unanswered`` times in a row without a reply is forgotten. Times are
    ``clock()`` seconds.
    """

    def __init__(
        self,
        *,
        max_nodes: int = 10_000,
        min_requery_seconds: float = 60.0,
        max_requery_seconds: float = 3600.0,
        max_unanswered: int = 3,
        allow_private: bool = False,
        exclude: Iterable[Endpoint] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_nodes = max_nodes
        self.min_requery_seconds = min_requery_seconds
        self.max_requery_seconds = max(min_requery_seconds, max_requery_seconds)
        self.max_unanswered = max_unanswered
        self.allow_private = allow_private
        self._exclude = set(exclude)
        self._clock = clock
        self._nodes: dict[Endpoint, _Node] = {}
        # (due, sequence, endpoint); an entry whose sequence is not the node's is stale.
        self._queue: list[tuple[float, int, Endpoint]] = []
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, endpoint: Endpoint) -> bool:
        return endpoint in self._nodes

    def add(self, endpoint: Endpoint) -> bool:
        """Remember a node, due at once; False if it is known, excluded, private or we are full."""
        if endpoint in self._nodes or endpoint in self._exclude:
            return False
        if len(self._nodes) >= self.max_nodes:
            return False
        if not self.allow_private and not is_public(endpoint):
            return False
        node = self._nodes[endpoint] = _Node(due=self._clock())
        self._push(endpoint, node)
        return True

    def add_many(self, endpoints: Iterable[Endpoint]) -> int:
        """Remember every node of ``endpoints``; how many were new."""
        return sum(self.add(endpoint) for endpoint in endpoints)

    def take_due(self, limit: int) -> list[Endpoint]:
        """Up to ``limit`` nodes due now, marked asked (due again after the minimum requery)."""
        now = self._clock()
        taken: list[Endpoint] = []
        while self._queue and len(taken) < limit and self._queue[0][0] <= now:
            _, entry, endpoint = heapq.heappop(self._queue)
            node = self._nodes.get(endpoint)
            if node is None or node.entry != entry:
                continue
            if node.unanswered >= self.max_unanswered:
                del self._nodes[endpoint]
                continue
            node.unanswered += 1
            node.due = now + self.min_requery_seconds
            taken.append(endpoint)
        # Pushed back only now: with a zero requery time the loop would take them again.
        for endpoint in taken:
            self._push(endpoint, self._nodes[endpoint])
        return taken

    def answered(self, endpoint: Endpoint, interval_seconds: float) -> None:
        """A node replied and asked not to be sampled again for ``interval_seconds``."""
        node = self._nodes.get(endpoint)
        if node is None:
            if not self.add(endpoint):
                return
            node = self._nodes[endpoint]
        node.unanswered = 0
        wait = min(max(interval_seconds, self.min_requery_seconds), self.max_requery_seconds)
        node.due = self._clock() + wait
        self._push(endpoint, node)

    def _push(self, endpoint: Endpoint, node: _Node) -> None:
        self._sequence += 1
        node.entry = self._sequence
        heapq.heappush(self._queue, (node.due, node.entry, endpoint))
        # Stale entries pile up when nodes answer; rebuild once they dominate the heap.
        if len(self._queue) > 4 * len(self._nodes) + 64:
            self._queue = [(n.due, n.entry, e) for e, n in self._nodes.items()]
            heapq.heapify(self._queue)
