"""The DHT crawler: sample info hashes, skip the known, fetch the new, deliver in batches.

Pipeline (bitmagnet's, in asyncio around libtorrent's own threads):

1. **Sample** (BEP 51): every tick, ask the nodes that are due (:class:`NodePool`, fed by the
   routing table and the ``nodes`` of each reply) for ``sample_infohashes`` towards a random
   target that rotates.
2. **Triage**: a hash in the seen filter (stored or banned before), in the optional blocked
   filter (removed through the API or CLI; written by others, re-read every
   ``blocked_refresh_seconds``), queued or in flight, or failed recently is skipped; a new one
   is queued (dropped, not blocking, if the queue is full).
3. **Fetch**: ``max_concurrent_fetches`` workers each run get_peers, then a metadata-only
   fetch from those peers.
4. **Ban**: a torrent whose name or a file path ``is_banned`` is never delivered, and its hash
   goes into the seen filter so it is never fetched again.
5. **Deliver**: metainfo is handed to ``sink`` in batches (``batch_size`` or every
   ``flush_seconds``). Only after the sink returns are the hashes added to the seen filter, so a
   failing sink loses nothing; the filter is saved through the :class:`SeenStore` every
   ``persist_seconds`` and on stop.

:class:`RateWatch` watches deliveries and raises ``bittorrented_crawler_stalled`` when they dry
up. The crawler is one event loop's: start and stop it from the loop that runs the session.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from types import TracebackType

import libtorrent as lt

from keel.bittorrented.dht import bloom, metrics
from keel.bittorrented.dht.fetcher import FetchStatus, MetadataFetcher
from keel.bittorrented.dht.nodes import NodePool
from keel.bittorrented.dht.peers import PeerFinder
from keel.bittorrented.dht.session import DhtSession, Endpoint
from keel.bittorrented.torrent.values import Metainfo
from keel.core.logging import get_logger

__all__ = ["BanCheck", "CrawlStats", "Crawler", "CrawlerSettings", "Sink"]

log = get_logger("keel.bittorrented.dht.crawler")

Sink = Callable[[list[Metainfo]], Awaitable[None]]
BanCheck = Callable[[str], bool]


def _never_banned(_name: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class CrawlerSettings:
    """Pacing and sizes of a crawl; times are seconds. Defaults suit a public crawl."""

    sample_tick_seconds: float = 0.5
    queries_per_tick: int = 20  # BEP 51 queries sent per tick, at most
    target_rotation_seconds: float = 10.0  # bitmagnet rotates its target every 10 s
    routing_refresh_seconds: float = 10.0
    max_known_nodes: int = 10_000
    min_requery_seconds: float = 60.0
    max_requery_seconds: float = 3600.0
    max_unanswered: int = 3
    allow_private_addresses: bool = False  # True only for a swarm on loopback or a LAN
    peer_lookup_seconds: float = 4.0  # bitmagnet's DHT query timeout
    peer_grace_seconds: float = 0.5
    max_peers: int = 50
    fetch_timeout_seconds: float = 10.0
    max_files: int = 100
    max_concurrent_fetches: int = 64
    queue_size: int = 10_000
    retry_after_seconds: float = 1800.0  # a hash that failed is not tried again before this
    max_cooling: int = 100_000
    batch_size: int = 1000  # bitmagnet persists 1,000 rows per minute at most
    flush_seconds: float = 60.0
    persist_seconds: float = 60.0
    blocked_refresh_seconds: float = 60.0
    stall_window_seconds: float = 900.0
    stall_min_per_minute: float = 1.0
    seen_error_rate: float = 0.001

    def __post_init__(self) -> None:
        if self.max_concurrent_fetches < 1 or self.batch_size < 1 or self.queue_size < 1:
            raise ValueError("max_concurrent_fetches, batch_size and queue_size must be >= 1")
        if self.sample_tick_seconds <= 0 or self.flush_seconds <= 0:
            raise ValueError("sample_tick_seconds and flush_seconds must be > 0")


@dataclass(frozen=True, slots=True)
class CrawlStats:
    """Counts since this crawler started (Prometheus has the process-wide totals)."""

    sample_queries: int = 0
    sample_replies: int = 0
    sampled: int = 0  # info hashes in replies, duplicates included
    new: int = 0
    seen: int = 0
    blocked: int = 0
    pending: int = 0
    cooling: int = 0
    dropped: int = 0
    no_peers: int = 0
    fetched: int = 0
    timed_out: int = 0
    failed: int = 0
    unsupported: int = 0
    banned: int = 0
    ingested: int = 0
    sink_failures: int = 0
    queued: int = 0  # gauges from here on
    in_flight: int = 0
    known_nodes: int = 0
    seen_filter_items: int = 0
    blocked_filter_items: int = 0


_GAUGES = frozenset(
    {"queued", "in_flight", "known_nodes", "seen_filter_items", "blocked_filter_items"}
)
_COUNTERS = tuple(f.name for f in fields(CrawlStats) if f.name not in _GAUGES)


class Crawler:
    """Crawls the DHT through ``session`` and delivers new torrents' metadata to ``sink``.

    ``store`` keeps the seen filter between runs (only this crawler writes it); ``blocked``,
    if given, holds hashes removed elsewhere, which the crawler only reads; ``is_banned(text)``
    is asked about each torrent's name and file paths. Use ``async with crawler:`` or
    ``await crawler.run(stop)``.
    """

    def __init__(
        self,
        session: DhtSession,
        *,
        sink: Sink,
        store: bloom.SeenStore,
        blocked: bloom.SeenStore | None = None,
        is_banned: BanCheck = _never_banned,
        settings: CrawlerSettings | None = None,
        fetcher: MetadataFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or CrawlerSettings()
        self._session = session
        self._sink = sink
        self._store = store
        self._blocked_store = blocked
        self._blocked: bloom.ScalableBloomFilter | None = None
        self._is_banned = is_banned
        self._clock = clock
        self._owns_fetcher = fetcher is None
        self._fetcher = fetcher
        self._seen: bloom.ScalableBloomFilter | None = None
        self._dirty = False
        self._pending: set[bytes] = set()
        self._cooling: OrderedDict[bytes, float] = OrderedDict()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(self.settings.queue_size)
        self._batch: dict[bytes, tuple[bytes, Metainfo]] = {}  # v1 hash -> (sampled, metainfo)
        self._batch_started = 0.0
        self._flush_lock = asyncio.Lock()
        self._persist_lock = asyncio.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._nodes = NodePool(
            max_nodes=self.settings.max_known_nodes,
            min_requery_seconds=self.settings.min_requery_seconds,
            max_requery_seconds=self.settings.max_requery_seconds,
            max_unanswered=self.settings.max_unanswered,
            allow_private=self.settings.allow_private_addresses,
            exclude=[session.endpoint],
            clock=clock,
        )
        self._peers: PeerFinder | None = None
        self._rate = metrics.RateWatch(
            window_seconds=self.settings.stall_window_seconds,
            min_per_minute=self.settings.stall_min_per_minute,
            clock=clock,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        """Load the seen filter and start sampling, fetching and flushing.

        Raises ValueError if a stored filter is damaged: starting empty would fetch banned
        torrents again, so that needs a person to decide.
        """
        if self._tasks:
            return
        self._seen = await bloom.load_filter(self._store, error_rate=self.settings.seen_error_rate)
        if self._blocked_store is not None:
            self._blocked = await bloom.load_filter(self._blocked_store)
        self._set_filter_gauges()
        if self._fetcher is None:
            self._fetcher = MetadataFetcher(
                self._session,
                timeout_seconds=self.settings.fetch_timeout_seconds,
                max_files=self.settings.max_files,
            )
        self._peers = PeerFinder(self._session, allow_private=self.settings.allow_private_addresses)
        self._unsubscribe = self._session.alerts.subscribe(
            lt.dht_sample_infohashes_alert, self._on_samples
        )
        self._rate = metrics.RateWatch(
            window_seconds=self.settings.stall_window_seconds,
            min_per_minute=self.settings.stall_min_per_minute,
            clock=self._clock,
        )
        self._tasks = [asyncio.create_task(self._sample_forever(), name="crawler-sampler")]
        self._tasks += [
            asyncio.create_task(self._fetch_forever(), name=f"crawler-fetch-{i}")
            for i in range(self.settings.max_concurrent_fetches)
        ]
        self._tasks.append(asyncio.create_task(self._housekeep_forever(), name="crawler-flush"))
        log.info("crawler_started", seen=len(self._seen), port=self._session.port)

    async def stop(self) -> None:
        """Stop every task, cancel fetches in flight, deliver the last batch and save the filter."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_fetcher and self._fetcher is not None:
            await self._fetcher.aclose()
            self._fetcher = None
        if self._peers is not None:
            self._peers.close()
            self._peers = None
        await self._flush()
        await self.persist()
        # Hashes still queued were never fetched; the next run samples them again.
        self._pending.clear()
        self._queue = asyncio.Queue(self.settings.queue_size)
        log.info("crawler_stopped", **{k: v for k, v in self._counts.items() if v})

    async def run(self, stop: asyncio.Event) -> None:
        """Crawl until ``stop`` is set, then stop cleanly."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Crawler:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the public surface for the CLI and the database layer -------------------------------

    def add_nodes(self, endpoints: Iterable[Endpoint]) -> int:
        """Offer DHT nodes to sample (beyond the routing table); how many were new."""
        return self._nodes.add_many(endpoints)

    def ban(self, info_hash: bytes) -> None:
        """Never fetch ``info_hash`` again (a deleted or banned torrent); saved with the filter.

        Only while started: a stopped crawler bans through ``bloom.ban_hashes(store, ...)``.
        """
        if self._seen is None:
            raise RuntimeError("the crawler has not started; use bloom.ban_hashes")
        if self._seen.add(info_hash):
            self._dirty = True

    async def persist(self) -> None:
        """Save the seen filter now if it changed (it is also saved periodically and on stop)."""
        # One save at a time: a stop must not return while an earlier save is still writing.
        async with self._persist_lock:
            if self._seen is None or not self._dirty:
                return
            self._dirty = False
            try:
                await self._store.save(self._seen.to_bytes())
            except Exception:
                self._dirty = True
                log.exception("seen_filter_save_failed")
                return
            self._set_filter_gauges()

    def _set_filter_gauges(self) -> None:
        if self._seen is not None:
            metrics.SEEN_FILTER_ITEMS.set(len(self._seen))
            metrics.SEEN_FILTER_BYTES.set(self._seen.byte_size)

    def stats(self) -> CrawlStats:
        """A snapshot of this crawler's counts and gauges."""
        return CrawlStats(
            **self._counts,
            queued=self._queue.qsize(),
            in_flight=self._fetcher.in_flight if self._fetcher is not None else 0,
            known_nodes=len(self._nodes),
            seen_filter_items=len(self._seen) if self._seen is not None else 0,
            blocked_filter_items=len(self._blocked) if self._blocked is not None else 0,
        )

    @property
    def stalled(self) -> bool:
        """Whether the ingestion rate is below its threshold (as of the last check)."""
        return self._rate.stalled

    # -- sampling and triage -------------------------------------------------------------------

    def _count(self, name: str, by: int = 1) -> None:
        self._counts[name] += by

    async def _sample_forever(self) -> None:
        settings = self.settings
        target = lt.sha1_hash(os.urandom(20))
        next_rotation = self._clock() + settings.target_rotation_seconds
        next_refresh = 0.0
        while True:
            now = self._clock()
            # While the pool is empty (bootstrapping) the routing table is read every tick.
            if now >= next_refresh or not len(self._nodes):
                self._nodes.add_many(self._session.routing_table())
                next_refresh = now + settings.routing_refresh_seconds
            if now >= next_rotation:
                target = lt.sha1_hash(os.urandom(20))
                next_rotation = now + settings.target_rotation_seconds
            # Back-pressure: no new samples while the fetchers are far behind.
            if self._queue.qsize() < settings.queue_size * 0.9:
                for endpoint in self._nodes.take_due(settings.queries_per_tick):
                    self._session.native.dht_sample_infohashes(endpoint, target)
                    self._count("sample_queries")
                    metrics.SAMPLE_QUERIES.inc()
            metrics.KNOWN_NODES.set(len(self._nodes))
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            await asyncio.sleep(settings.sample_tick_seconds)

    def _on_samples(self, alert: lt.dht_sample_infohashes_alert) -> None:
        self._count("sample_replies")
        metrics.SAMPLE_REPLIES.inc()
        self._nodes.answered(alert.endpoint, alert.interval.total_seconds())
        self._nodes.add_many(node["endpoint"] for node in alert.nodes)
        samples = alert.samples
        self._count("sampled", len(samples))
        metrics.INFOHASHES_SAMPLED.inc(len(samples))
        for sample in samples:
            self._triage(sample.to_bytes())

    def _triage(self, info_hash: bytes) -> None:
        result = self._classify(info_hash)
        if result == "new":
            try:
                self._queue.put_nowait(info_hash)
            except asyncio.QueueFull:
                result = "dropped"  # not remembered: it will be sampled again
            else:
                self._pending.add(info_hash)
        self._count(result)
        metrics.INFOHASHES_TRIAGED.labels(result).inc()

    def _classify(self, info_hash: bytes) -> str:
        assert self._seen is not None
        if info_hash in self._seen:
            return "seen"
        if self._blocked is not None and info_hash in self._blocked:
            return "blocked"
        if info_hash in self._pending:
            return "pending"
        retry_at = self._cooling.get(info_hash)
        if retry_at is not None:
            if retry_at > self._clock():
                return "cooling"
            del self._cooling[info_hash]
        return "new"

    def _cool(self, info_hash: bytes) -> None:
        self._pending.discard(info_hash)
        now = self._clock()
        self._cooling[info_hash] = now + self.settings.retry_after_seconds
        self._cooling.move_to_end(info_hash)
        # Every entry has the same delay, so the oldest is first: trim expired and overflow.
        while self._cooling:
            oldest, retry_at = next(iter(self._cooling.items()))
            if retry_at > now and len(self._cooling) <= self.settings.max_cooling:
                break
            del self._cooling[oldest]

    def _remember(self, *info_hashes: bytes) -> None:
        assert self._seen is not None
        for info_hash in info_hashes:
            if self._seen.add(info_hash):
                self._dirty = True

    # -- fetching, banning, delivering -------------------------------------------------------

    async def _fetch_forever(self) -> None:
        while True:
            info_hash = await self._queue.get()
            try:
                await self._crawl_one(info_hash)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("crawl_failed", info_hash=info_hash.hex())
                self._cool(info_hash)

    async def _crawl_one(self, info_hash: bytes) -> None:
        assert self._peers is not None
        assert self._fetcher is not None
        assert self._seen is not None
        settings = self.settings
        peers = await self._peers.find(
            info_hash,
            timeout_seconds=settings.peer_lookup_seconds,
            grace_seconds=settings.peer_grace_seconds,
            max_peers=settings.max_peers,
        )
        if not peers:
            self._count("no_peers")
            self._cool(info_hash)
            return
        outcome = await self._fetcher.fetch(info_hash, peers=peers)
        if outcome.status is FetchStatus.UNSUPPORTED:
            # A v2-only torrent can never be indexed by v1 hash: do not ask again.
            self._count("unsupported")
            self._pending.discard(info_hash)
            self._remember(info_hash)
            return
        if outcome.metainfo is None:
            self._count("timed_out" if outcome.status is FetchStatus.TIMED_OUT else "failed")
            self._cool(info_hash)
            return
        self._count("fetched")
        metainfo = outcome.metainfo
        if self._blocked is not None and (
            info_hash in self._blocked or metainfo.info_hash in self._blocked
        ):
            # Removed elsewhere while we were fetching it (or blocked by its v1 hash).
            self._count("blocked")
            self._pending.discard(info_hash)
            self._remember(info_hash)
            return
        if self._banned(metainfo):
            self._count("banned")
            metrics.BANNED.inc()
            self._pending.discard(info_hash)
            self._remember(info_hash, metainfo.info_hash)
            log.info("torrent_banned", info_hash=metainfo.info_hash_hex)
            return
        if metainfo.info_hash != info_hash and metainfo.info_hash in self._seen:
            # A hybrid torrent sampled by its v2 key whose v1 hash is already stored.
            self._pending.discard(info_hash)
            self._remember(info_hash)
            return
        if not self._batch:
            self._batch_started = self._clock()
        self._batch[metainfo.info_hash] = (info_hash, metainfo)
        if len(self._batch) >= settings.batch_size:
            # Shielded: a stop cancelling this worker must not cut the sink off mid-write.
            await asyncio.shield(self._flush())

    def _banned(self, metainfo: Metainfo) -> bool:
        if self._is_banned(metainfo.name):
            return True
        return any(self._is_banned(file.path) for file in metainfo.files)

    async def _flush(self) -> None:
        async with self._flush_lock:
            batch, self._batch = self._batch, {}
            if self._blocked is not None:
                # A hash removed elsewhere after its fetch but before this flush.
                for key, (sampled, metainfo) in list(batch.items()):
                    if metainfo.info_hash in self._blocked or sampled in self._blocked:
                        del batch[key]
                        self._count("blocked")
                        self._pending.discard(sampled)
                        self._remember(sampled, metainfo.info_hash)
            if not batch:
                return
            try:
                await self._sink([metainfo for _, metainfo in batch.values()])
            except Exception:
                self._count("sink_failures")
                metrics.SINK_FAILURES.inc()
                log.exception("crawler_sink_failed", batch=len(batch))
                self._requeue(batch)
                return
            for sampled, metainfo in batch.values():
                self._pending.discard(sampled)
                self._remember(sampled, metainfo.info_hash)
            self._count("ingested", len(batch))
            metrics.INGESTED.inc(len(batch))
            self._rate.record(len(batch))

    async def _reload_blocked(self, store: bloom.SeenStore) -> None:
        try:
            self._blocked = await bloom.load_filter(store)
        except Exception:
            # Keep the filter we have: a damaged or unreachable store must not unblock hashes.
            log.exception("blocked_filter_load_failed")

    def _requeue(self, failed: dict[bytes, tuple[bytes, Metainfo]]) -> None:
        # Keep the failed batch for the next flush, but not without bound: what does not fit
        # is forgotten (it was never marked seen, so a later sample finds it again).
        merged = {**failed, **self._batch}
        limit = self.settings.batch_size * 10
        for key in list(merged)[limit:]:
            self._pending.discard(merged.pop(key)[0])
        self._batch = merged
        self._batch_started = self._clock()

    async def _housekeep_forever(self) -> None:
        settings = self.settings
        tick = min(1.0, settings.flush_seconds, settings.persist_seconds)
        next_persist = self._clock() + settings.persist_seconds
        next_blocked = self._clock() + settings.blocked_refresh_seconds
        while True:
            await asyncio.sleep(tick)
            now = self._clock()
            if self._batch and now - self._batch_started >= settings.flush_seconds:
                await asyncio.shield(self._flush())
            if now >= next_persist:
                next_persist = now + settings.persist_seconds
                await asyncio.shield(self.persist())
            if self._blocked_store is not None and now >= next_blocked:
                next_blocked = now + settings.blocked_refresh_seconds
                await self._reload_blocked(self._blocked_store)
            self._rate.check()
