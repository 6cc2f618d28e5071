"""Caches a product keeps values, counters, locks and rate limits in.

* :class:`MemoryCache` (``memory.py``): this process only; the embedded default.
* :class:`FailoverCache` (``failover.py``): one or two Redis servers (``provider.py``, each
  fail-fast behind its own breaker) with the memory cache behind them; invalidations survive
  a failover (ADR 0030).

:func:`open_cache` picks one from the configured URLs.
"""

from __future__ import annotations

from keel.core.cache.base import Cache, CacheStatus, Lock, ProviderStatus
from keel.core.cache.failover import FailoverCache
from keel.core.cache.memory import MemoryCache
from keel.core.cache.provider import ProviderPolicy, RedisProvider

__all__ = [
    "Cache",
    "CacheStatus",
    "FailoverCache",
    "Lock",
    "MemoryCache",
    "ProviderPolicy",
    "ProviderStatus",
    "RedisProvider",
    "open_cache",
]


def open_cache(
    *,
    name: str,
    primary_url: str = "",
    secondary_url: str = "",
    key_prefix: str = "keel",
    policy: ProviderPolicy | None = None,
) -> Cache:
    """The cache of product ``name``: in memory when no URL is given, else on the primary
    and, when set, the secondary Redis. Breakers are ``<name>_cache:<primary|secondary>``;
    Redis keys start with ``<key_prefix>:<name>:cache:``."""
    if secondary_url and not primary_url:
        raise ValueError("a secondary Redis needs a primary")
    if not primary_url:
        return MemoryCache(name=name)
    urls = {"primary": primary_url, "secondary": secondary_url}
    providers = [
        RedisProvider(url, label=label, breaker_name=f"{name}_cache:{label}", policy=policy)
        for label, url in urls.items()
        if url
    ]
    return FailoverCache(providers, name=name, namespace=f"{key_prefix}:{name}:cache")
