"""Building caches for tests: failover caches on given servers or on the shared test Redis
pair (the second one .ci/run starts), policies that trip fast, and waiting for a condition."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import cast

import pytest
import redis.asyncio

from keel.core.cache import FailoverCache, ProviderPolicy, RedisProvider
from keel.core.resilience import CircuitState
from tests.conftest import REDIS_URL, need_service

REDIS_SECONDARY_URL = os.environ.get("KEEL_TEST_REDIS_SECONDARY_URL", "")

# Quick to trip and quick to probe again, so failover tests take well under a second each.
# Only failures trip it: a loaded CI machine stalls the event loop long enough to make calls
# look slow (the slow-call tests set their own threshold).
FAST = ProviderPolicy(open_seconds=0.3, window_calls=10, minimum_calls=4, slow_call_seconds=2.0)
# While nothing fails: patient enough that a loaded CI machine does not trip a breaker.
STEADY = ProviderPolicy(call_timeout_seconds=5.0, slow_call_seconds=2.0)


def failover_cache(
    urls: list[str],
    *,
    namespace: str | None = None,
    policy: ProviderPolicy = FAST,
    transitions: list[tuple[str, CircuitState, CircuitState]] | None = None,
) -> FailoverCache:
    """A cache on ``urls`` (primary first) under a namespace of its own unless given: two
    caches on one namespace are two processes sharing the servers. Breaker transitions are
    appended to ``transitions`` as (label, old, new)."""
    labels = ["primary", "secondary"]
    tag = uuid.uuid4().hex[:8]

    def watcher(label: str) -> Callable[[CircuitState, CircuitState], None] | None:
        if transitions is None:
            return None
        return lambda old, new: transitions.append((label, old, new))

    providers = [
        RedisProvider(
            url,
            label=label,
            breaker_name=f"test_cache_{tag}:{label}",
            policy=policy,
            on_state_change=watcher(label),
        )
        for label, url in zip(labels, urls, strict=False)
    ]
    return FailoverCache(
        providers, name=f"test-{tag}", namespace=namespace or f"keel-test-{uuid.uuid4().hex[:12]}"
    )


async def _reachable(url: str) -> bool:
    client = redis.asyncio.Redis.from_url(url)
    try:
        return bool(await cast("Awaitable[bool]", client.ping()))
    except redis.RedisError:
        return False
    finally:
        await client.aclose()


async def _drop_namespace(url: str, namespace: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def shared_redis_urls() -> list[str]:
    """The shared test Redis servers, primary then secondary; a test writes under a
    namespace of its own (deleted afterwards by :func:`on_shared`)."""
    if not REDIS_URL:
        need_service("KEEL_TEST_REDIS_URL")
    if not REDIS_SECONDARY_URL:
        need_service("KEEL_TEST_REDIS_SECONDARY_URL")
    urls = [REDIS_URL, REDIS_SECONDARY_URL]
    for url in urls:
        if not await _reachable(url):
            need_service(f"Redis at {url}")
    return urls


@asynccontextmanager
async def on_shared(count: int) -> AsyncIterator[FailoverCache]:
    """A failover cache on the first ``count`` shared servers; its keys go afterwards."""
    urls = (await shared_redis_urls())[:count]
    made = failover_cache(urls, policy=STEADY)
    try:
        yield made
    finally:
        await made.aclose()
        for url in urls:
            await _drop_namespace(url, made.namespace)


async def until(condition: Callable[[], bool], *, seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"still not true after {seconds} s")
        await asyncio.sleep(0.01)
