"""RiskRadar: reports cached for the TTL in the shared cache, one request per token at once."""

from __future__ import annotations

import asyncio

import pytest

from keel.coach.risk import Level, RiskRadar, RiskReport, ScanUnavailable
from keel.coach.risk.addresses import parse_token
from keel.coach.risk.radar import cache_key
from keel.core.cache import MemoryCache
from tests.coach.risk.fake_scanner import FakeScanner
from tests.replay import ReplayServer

from .conftest import NOW, GoPlusFactory

CLEAN = "0x4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_second_scan_within_ttl_makes_no_request_and_after_ttl_does(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    clock = Clock()
    radar = RiskRadar(goplus("evm_clean"), MemoryCache(clock=clock), ttl_seconds=300, clock=clock)

    first, first_score = await radar.scan(None, CLEAN)
    clock.now += 299
    second, second_score = await radar.scan("1", CLEAN.upper().replace("0X", "0x"))
    assert replay.hits[("goplus", "evm_clean")] == 1
    assert (second, second_score) == (first, first_score)
    assert first_score.level is Level.LOW

    clock.now += 1  # 300 s after the scan: stale
    await radar.scan(None, CLEAN)
    assert replay.hits[("goplus", "evm_clean")] == 2


async def test_entry_older_than_ttl_is_stale_even_if_the_store_still_has_it(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    radar_clock = Clock()
    cache = MemoryCache()  # real time: the store keeps the entry 300 s
    radar = RiskRadar(goplus("evm_clean"), cache, ttl_seconds=300, clock=radar_clock)
    await radar.scan(None, CLEAN)
    radar_clock.now += 301  # e.g. another process's clock, or a Redis TTL rounded up

    await radar.scan(None, CLEAN)

    assert replay.hits[("goplus", "evm_clean")] == 2


async def test_concurrent_scans_of_one_token_make_one_request(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    radar = RiskRadar(goplus("solana_clean"), MemoryCache(), ttl_seconds=300)
    mint = "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr"

    results = await asyncio.gather(*(radar.scan(None, mint) for _ in range(16)))

    assert replay.hits[("goplus", "solana_clean")] == 1
    assert len({report for report, _ in results}) == 1


async def test_fresh_scan_skips_the_cache_and_ttl_zero_never_caches(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    radar = RiskRadar(goplus("evm_clean"), MemoryCache(), ttl_seconds=300)
    await radar.scan(None, CLEAN)
    await radar.scan(None, CLEAN, fresh=True)
    assert replay.hits[("goplus", "evm_clean")] == 2

    uncached = RiskRadar(goplus("evm_clean"), MemoryCache(), ttl_seconds=0)
    await uncached.scan(None, CLEAN)
    await uncached.scan(None, CLEAN)
    assert replay.hits[("goplus", "evm_clean")] == 4


async def test_errors_are_not_cached() -> None:
    scanner = FakeScanner()
    scanner.fail("1", CLEAN, ScanUnavailable())
    radar = RiskRadar(scanner, MemoryCache(), ttl_seconds=300)
    with pytest.raises(ScanUnavailable):
        await radar.scan("1", CLEAN)

    scanner.put(RiskReport(chain="1", address=CLEAN, is_honeypot=False))
    report, _ = await radar.scan("1", CLEAN)

    assert report.is_honeypot is False
    assert scanner.calls[("1", CLEAN)] == 2


async def test_unreadable_cache_entry_is_a_miss() -> None:
    scanner = FakeScanner(RiskReport(chain="1", address=CLEAN))
    cache = MemoryCache()
    radar = RiskRadar(scanner, cache, ttl_seconds=300)
    key = cache_key(parse_token(CLEAN))
    await cache.set_json(key, {"at": 0, "report": {"v": 99}}, ttl_seconds=300)
    await radar.scan("1", CLEAN)
    await cache.set_json(key, {"at": "soon", "report": None}, ttl_seconds=300)
    await radar.scan("1", CLEAN)

    assert scanner.calls[("1", CLEAN)] == 2


class GatedScanner(FakeScanner):
    """Holds every scan until ``gate`` is set."""

    def __init__(self, *reports: RiskReport) -> None:
        super().__init__(*reports)
        self.gate = asyncio.Event()

    async def scan(self, chain: str, address: str) -> RiskReport:
        await self.gate.wait()
        return await super().scan(chain, address)


async def test_one_waiter_giving_up_does_not_cancel_the_shared_scan() -> None:
    scanner = GatedScanner(RiskReport(chain="1", address=CLEAN))
    radar = RiskRadar(scanner, MemoryCache(), ttl_seconds=300)
    impatient = asyncio.create_task(radar.scan("1", CLEAN))
    patient = asyncio.create_task(radar.scan("1", CLEAN))
    await asyncio.sleep(0)
    impatient.cancel()
    scanner.gate.set()

    report, _ = await patient

    assert report.address == CLEAN
    assert scanner.calls[("1", CLEAN)] == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient


def test_ttl_beyond_the_cache_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        RiskRadar(FakeScanner(), MemoryCache(max_ttl_seconds=60), ttl_seconds=300)
