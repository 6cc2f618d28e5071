"""Prometheus metrics of the DHT crawler and metadata fetcher, and the stall alarm.

The seed document's complaint is that "crawler failures are silent": a crawler that stops
ingesting looks exactly like a quiet DHT. :class:`RateWatch` turns "no ingestion for a window"
into a warning log and ``bittorrented_crawler_stalled 1``, which an alert rule can page on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from keel.core.logging import get_logger

log = get_logger("keel.bittorrented.dht")

SAMPLE_QUERIES = Counter(
    "bittorrented_crawler_sample_queries_total", "BEP 51 sample_infohashes queries sent"
)
SAMPLE_REPLIES = Counter(
    "bittorrented_crawler_sample_replies_total", "BEP 51 sample_infohashes replies received"
)
INFOHASHES_SAMPLED = Counter(
    "bittorrented_crawler_infohashes_sampled_total", "Info hashes received in BEP 51 samples"
)
INFOHASHES_TRIAGED = Counter(
    "bittorrented_crawler_infohashes_triaged_total",
    "Sampled info hashes by triage result: new (queued), seen (in the seen filter), blocked "
    "(removed elsewhere), pending (queued or in flight), cooling (failed recently), dropped "
    "(queue full)",
    ["result"],
)
PEER_LOOKUPS = Counter(
    "bittorrented_crawler_peer_lookups_total", "DHT get_peers lookups by result", ["result"]
)
BANNED = Counter(
    "bittorrented_crawler_banned_total", "Fetched torrents dropped by the banned-keyword filter"
)
INGESTED = Counter("bittorrented_crawler_ingested_total", "Torrents delivered to the sink (stored)")
SINK_FAILURES = Counter(
    "bittorrented_crawler_sink_failures_total", "Batches the sink raised on (kept for a retry)"
)
INGESTION_RATE = Gauge(
    "bittorrented_crawler_ingestion_rate_per_minute",
    "Torrents delivered to the sink per minute, over the stall window",
)
STALLED = Gauge(
    "bittorrented_crawler_stalled",
    "1 while the ingestion rate over the window is below its threshold, else 0",
)
KNOWN_NODES = Gauge("bittorrented_crawler_known_nodes", "DHT nodes the sampler may query")
QUEUE_DEPTH = Gauge("bittorrented_crawler_queue_depth", "New info hashes waiting for a fetch")
SEEN_FILTER_ITEMS = Gauge(
    "bittorrented_crawler_seen_filter_items", "Info hashes in the seen (never again) filter"
)
SEEN_FILTER_BYTES = Gauge(
    "bittorrented_crawler_seen_filter_bytes", "Size of the seen filter's bit arrays"
)

METADATA_FETCHES = Counter(
    "bittorrented_metadata_fetches_total",
    "Metadata fetches (BEP 9) by outcome: fetched, timed_out, failed, unsupported",
    ["outcome"],
)
METADATA_FETCH_SECONDS = Histogram(
    "bittorrented_metadata_fetch_seconds",
    "Time from adding a metadata-only torrent to its outcome",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 10.0, 20.0, 30.0),
)
FETCHES_IN_FLIGHT = Gauge(
    "bittorrented_metadata_fetches_in_flight", "Metadata-only torrents in the session now"
)
ALERTS_DROPPED = Counter(
    "bittorrented_dht_alerts_dropped_total",
    "Times libtorrent's alert queue overflowed (raise alert_queue_size)",
)


class RateWatch:
    """Flags when events per minute over the last ``window_seconds`` fall below a threshold.

    ``record(n)`` counts events; ``check()`` says whether the rate is too low, updates the
    ingestion-rate and stalled gauges, and logs a warning when the state turns stalled (and an
    info line when it recovers). Nothing is flagged before one full window has passed since the
    watch started, so a fresh crawler is not stalled. Times are ``clock()`` seconds (monotonic).
    """

    def __init__(
        self,
        *,
        window_seconds: float,
        min_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "crawler",
    ) -> None:
        if window_seconds <= 0 or min_per_minute < 0:
            raise ValueError("window_seconds must be > 0 and min_per_minute >= 0")
        self.window_seconds = window_seconds
        self.min_per_minute = min_per_minute
        self.name = name
        self._clock = clock
        self._started = clock()
        self._events: deque[tuple[float, int]] = deque()
        self._in_window = 0
        self.stalled = False

    def record(self, count: int = 1) -> None:
        """Count ``count`` events now."""
        if count > 0:
            self._events.append((self._clock(), count))
            self._in_window += count

    def per_minute(self) -> float:
        """Events per minute over the window (over the time since start, before a full window)."""
        now = self._clock()
        self._expire(now)
        span = min(self.window_seconds, now - self._started)
        return self._in_window * 60.0 / span if span > 0 else 0.0

    def check(self) -> bool:
        """True while stalled; sets the gauges and logs each change of state."""
        rate = self.per_minute()
        INGESTION_RATE.set(rate)
        warmed_up = self._clock() - self._started >= self.window_seconds
        stalled = warmed_up and rate < self.min_per_minute
        if stalled and not self.stalled:
            log.warning(
                "crawler_stalled",
                watch=self.name,
                per_minute=round(rate, 3),
                min_per_minute=self.min_per_minute,
                window_seconds=self.window_seconds,
            )
        elif self.stalled and not stalled:
            log.info("crawler_recovered", watch=self.name, per_minute=round(rate, 3))
        self.stalled = stalled
        STALLED.set(1 if stalled else 0)
        return stalled

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._events and self._events[0][0] < horizon:
            self._in_window -= self._events.popleft()[1]
