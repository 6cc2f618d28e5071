"""Prometheus metrics of swarm scraping and the refresh rounds."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from keel.bittorrented.swarm.base import Outcome

SCRAPES = Counter(
    "bittorrented_swarm_scrapes_total",
    "Scrape exchanges (one UDP packet, HTTP request or DHT query) by transport and outcome",
    ["transport", "outcome"],
)
SCRAPE_SECONDS = Histogram(
    "bittorrented_swarm_scrape_seconds",
    "Time of one scrape exchange, retries included",
    ["transport"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TORRENTS_REFRESHED = Counter(
    "bittorrented_swarm_torrents_refreshed_total",
    "Torrents whose counts a refresh round wrote, by source (tracker, dht); 'none' counts "
    "torrents no source knew",
    ["source"],
)
ROUNDS = Counter(
    "bittorrented_swarm_rounds_total", "Refresh rounds by result (ok, failed)", ["result"]
)
ROUND_SECONDS = Histogram(
    "bittorrented_swarm_round_seconds",
    "Time of one refresh round: scrape and write",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)


def record(transport: str, outcome: Outcome, seconds: float) -> None:
    """Count one exchange and its time."""
    SCRAPES.labels(transport, outcome.value).inc()
    SCRAPE_SECONDS.labels(transport).observe(seconds)
