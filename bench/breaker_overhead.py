"""What the circuit breaker and the failover cache cost per call.

1. **Breaker overhead.** The same trivial coroutine awaited bare and through
   ``keel.core.resilience.CircuitBreaker`` in each configuration products use: a time window
   (the default), a count window, a count window with a per-call timeout (``asyncio.timeout``
   around the call), and the ``guard()`` context manager. Nanoseconds per call (median of
   ``--rounds``, contenders interleaved in one process), the overhead over bare and the ratio.
2. **Cache reads.** ``GET`` of one small key, sequential (p50/p95/p99 latency) and from 32
   concurrent tasks (reads/s), through raw redis-py against
   ``keel.core.cache.FailoverCache`` on one provider and on two (a read asks both and checks
   the journals). Same servers, same key, contenders interleaved.

Redis: ``--primary-url`` and ``--secondary-url`` (the test servers .ci/run starts); when one
does not answer, the script starts its own ``redis-server`` on a free loopback port.

    PYTHONPATH=src:. .venv/bin/python bench/breaker_overhead.py [--calls 200000] [--rounds 5]
        [--reads 5000] [--primary-url redis://127.0.0.1:6379/13]
        [--secondary-url redis://127.0.0.1:6380/13]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import redis.asyncio
from tests.redis_server import RedisServer

from keel.core.cache import FailoverCache, ProviderPolicy, RedisProvider
from keel.core.resilience import BreakerRegistry, CircuitBreaker


async def work() -> int:
    return 1


def breakers() -> dict[str, Callable[[], Awaitable[int]] | None]:
    registry = BreakerRegistry()  # not the process's: nothing here is for the status page
    time_window = CircuitBreaker("bench_time", registry=registry)
    count_window = CircuitBreaker("bench_count", window_calls=100, registry=registry)
    timed = CircuitBreaker(
        "bench_timeout", window_calls=100, call_timeout_seconds=5, registry=registry
    )

    async def guarded_context() -> int:
        async with count_window.guard():
            return await work()

    return {
        "bare": None,
        "time window": lambda: time_window.call(work),
        "count window": lambda: count_window.call(work),
        "count window + call timeout": lambda: timed.call(work),
        "guard() context manager": guarded_context,
    }


async def per_call_ns(fn: Callable[[], Awaitable[int]] | None, calls: int) -> float:
    started = time.perf_counter_ns()
    if fn is None:
        for _ in range(calls):
            await work()
    else:
        for _ in range(calls):
            await fn()
    return (time.perf_counter_ns() - started) / calls


async def bench_breaker(calls: int, rounds: int) -> None:
    contenders = breakers()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_no in range(rounds):
        order = list(contenders.items())
        if round_no % 2:
            order.reverse()
        for name, fn in order:
            samples[name].append(await per_call_ns(fn, calls))
    bare = statistics.median(samples["bare"])
    print(f"\n### Breaker overhead ({calls} calls x {rounds} rounds, median ns per call)\n")
    print("| contender | ns/call | overhead ns | ratio to bare |")
    print("|:--|--:|--:|--:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {median - bare:.0f} | {median / bare:.2f} |")


async def reachable(url: str) -> bool:
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return bool(await client.execute_command("PING"))  # type: ignore[no-untyped-call]
    except (redis.RedisError, OSError):
        return False
    finally:
        await client.aclose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def bench_cache(primary: str, secondary: str, reads: int, rounds: int) -> None:
    namespace = f"keel-bench-{uuid.uuid4().hex[:8]}"
    patient = ProviderPolicy(call_timeout_seconds=5, slow_call_seconds=5)

    def cache(urls: list[str], tag: str) -> FailoverCache:
        providers = [
            RedisProvider(url, label=label, breaker_name=f"bench_{tag}:{label}", policy=patient)
            for label, url in zip(["primary", "secondary"], urls, strict=False)
        ]
        return FailoverCache(providers, name=f"bench-{tag}", namespace=namespace)

    raw = redis.asyncio.Redis.from_url(primary)
    one, two = cache([primary], "one"), cache([primary, secondary], "two")
    await two.set("page", b"x" * 200, ttl_seconds=600)
    full_key = f"{namespace}:page"
    contenders: dict[str, Callable[[], Awaitable[object]]] = {
        "raw redis-py GET": lambda: raw.get(full_key),
        "FailoverCache, 1 provider": lambda: one.get("page"),
        "FailoverCache, 2 providers": lambda: two.get("page"),
    }
    latencies: dict[str, list[float]] = {name: [] for name in contenders}
    throughput: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm connections and scripts
        await asyncio.gather(*(fn() for _ in range(32)))
    for round_no in range(rounds):
        order = list(contenders.items())
        if round_no % 2:
            order.reverse()
        for name, fn in order:
            for _ in range(reads // rounds):
                started = time.perf_counter()
                await fn()
                latencies[name].append((time.perf_counter() - started) * 1e6)
            per_task = max(1, reads // rounds // 32)

            async def loop(fn: Callable[[], Awaitable[object]] = fn, n: int = per_task) -> None:
                for _ in range(n):
                    await fn()

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(32)))
            throughput[name].append(32 * per_task / (time.perf_counter() - started))
    base_p50 = statistics.median(latencies["raw redis-py GET"])
    base_rate = statistics.median(throughput["raw redis-py GET"])
    print(f"\n### Cache GET ({reads} sequential reads and {reads} from 32 tasks per contender)\n")
    print("| contender | p50 µs | p95 µs | p99 µs | p50 ratio | reads/s at 32 | rate ratio |")
    print("|:--|--:|--:|--:|--:|--:|--:|")
    for name in contenders:
        values = latencies[name]
        p50 = statistics.median(values)
        rate = statistics.median(throughput[name])
        print(
            f"| {name} | {p50:.0f} | {percentile(values, 0.95):.0f} | "
            f"{percentile(values, 0.99):.0f} | {p50 / base_p50:.2f} | {rate:,.0f} | "
            f"{rate / base_rate:.2f} |"
        )
    await raw.delete(full_key)
    await raw.aclose()
    await one.aclose()
    await two.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=5_000)
    parser.add_argument("--primary-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--secondary-url", default="redis://127.0.0.1:6380/13")
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    await bench_breaker(args.calls, args.rounds)
    with ExitStack() as stack:
        urls = []
        for url in (args.primary_url, args.secondary_url):
            if not await reachable(url):
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                server = RedisServer(workdir)
                server.start()
                stack.callback(server.stop)
                url = server.url
            urls.append(url)
        await bench_cache(urls[0], urls[1], args.reads, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
