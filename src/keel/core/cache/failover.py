"""A cache on one or more Redis providers (in order of preference) that never fails a request
and never serves a value a completed write replaced, across a failover and back.

* **Writes** (set, delete) go to every provider at once. A provider that missed one (down,
  slow, breaker open) is recorded in a *journal* on each provider that took it: hashes
  ``<namespace>:~journal:<label>`` (key -> generation, bumped at each miss) and
  ``~repaired:<label>`` (the generation repaired since).
* **Reads** ask every provider at once; each also says whether the journals it holds for
  the providers preferred over it list the key. The answer is the first provider's, in
  order of preference, that answered and is not listed as having missed the key; a miss
  there falls through to the next, once the providers preferred over that one confirm
  they do not list it (a second round trip, only then). So a provider that comes back with
  old data (it was paused or cut off, not restarted) is not believed for what it missed,
  by any process, from its first answer on.
* **Reconciling** deletes on a returned provider what it missed and marks those entries
  repaired (a key missed again meanwhile stays to repair). Entries are not removed: a read
  racing the repair could otherwise take the old copy it read just before the delete for a
  good one, once the entry it checked just after was gone. They expire with their journal,
  which outlives every value written before it; until then the listed keys are read from
  the provider that holds the journal, which has them.
* **Counters** are incremented everywhere and journaled apart (``~counts:<label>``); the
  answer is chosen as for reads, so a provider's atomic count answers while it missed
  nothing. Reconciling raises a returned provider's counters to the survivor's (never
  lowers them), so a failover does not hand out a day's usage again.
* **Every provider down**: this process answers from its own memory (cold when the outage
  starts) and remembers the keys it wrote, which it invalidates on the providers as soon as
  one answers again. That is the one window where another process may read a value this one
  replaced: until the providers return, nobody could have been told.

What this does not cover: a provider whose journal cannot be asked (its holder is down or
too slow for the call) is believed, so a second failure before reconciling, taking the
journal's holder with it, can serve values until they expire by their TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

from prometheus_client import Counter

from keel.core.cache.base import (
    Cache,
    CacheStatus,
    Lock,
    ProviderStatus,
    check_key,
    check_ttl,
    new_token,
)
from keel.core.cache.limiter import FailoverLimiter
from keel.core.cache.memory import DEFAULT_MAX_TTL_SECONDS, MemoryCache
from keel.core.cache.provider import MISSED, Journal, Missed, RedisProvider
from keel.core.logging import get_logger
from keel.core.ratelimit import RateLimiter, WindowLimiter

log = get_logger("keel.cache")

CACHE_OPERATIONS = Counter(
    "keel_cache_operations_total",
    "Cache operations by what answered them: a provider's label, or fallback (this process)",
    ["cache", "op", "source"],
)
CACHE_JOURNALED = Counter(
    "keel_cache_journaled_keys_total",
    "Keys written while a provider missed them, journaled for reconciliation",
    ["cache", "provider"],
)
CACHE_RECONCILED = Counter(
    "keel_cache_reconciled_keys_total",
    "Missed keys invalidated on a provider that returned",
    ["cache", "provider"],
)
CACHE_PENDING_DROPPED = Counter(
    "keel_cache_pending_dropped_total",
    "Keys written while every provider was down that this process could not remember "
    "(past max_pending); they expire by their TTL",
    ["cache"],
)
_FALLBACK = "fallback"
T = TypeVar("T")


class FailoverCache(Cache):
    """A :class:`~keel.core.cache.base.Cache` on ``providers`` with ``fallback`` behind them.

    ``namespace`` prefixes every Redis key; ``max_ttl_seconds`` bounds values' TTLs and is
    how long a journal is kept. At most ``max_pending`` keys written while every provider is
    down are remembered for invalidation.
    """

    def __init__(
        self,
        providers: Sequence[RedisProvider],
        *,
        name: str,
        namespace: str,
        fallback: MemoryCache | None = None,
        max_ttl_seconds: float = DEFAULT_MAX_TTL_SECONDS,
        max_pending: int = 10_000,
    ) -> None:
        if not providers:
            raise ValueError("a failover cache needs at least one provider")
        labels = [p.label for p in providers]
        if len(set(labels)) != len(labels):
            raise ValueError(f"provider labels must differ: {labels}")
        self.name = name
        self.namespace = namespace
        self.max_ttl_seconds = max_ttl_seconds
        self.max_pending = max_pending
        self.providers = tuple(providers)
        self.fallback = fallback or MemoryCache(
            name=_FALLBACK, max_ttl_seconds=max_ttl_seconds, max_entries=10_000
        )
        self._keep_ms = check_ttl(max_ttl_seconds, max_ttl_seconds)
        # Whose journals a provider's answer reports on: for a read, the providers preferred
        # over it (whether to believe them); for a counter, every other one.
        self._before = {p.label: list(self.providers[:i]) for i, p in enumerate(self.providers)}
        self._others = {p.label: [q for q in self.providers if q is not p] for p in self.providers}
        self._fallback_active = False
        self._pending: dict[str, None] = {}  # insertion-ordered set of caller keys
        self._suspect: set[str] = set()  # providers this process saw miss writes
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._limiters: list[WindowLimiter] = []
        self._counters: dict[tuple[str, str], Counter] = {}

    def _count(self, op: str, source: str) -> None:
        counter = self._counters.get((op, source))
        if counter is None:  # labels() locks and looks up: once per pair, not per call
            counter = self._counters[op, source] = CACHE_OPERATIONS.labels(self.name, op, source)
        counter.inc()

    async def _everywhere(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T | Missed]:
        """Each provider's call (in provider order) at once; the first runs in this task,
        the others in tasks of their own (one provider: no task at all)."""
        others = [
            asyncio.create_task(p.attempt(call))
            for p, call in zip(self.providers[1:], calls[1:], strict=True)
        ]
        try:
            first = await self.providers[0].attempt(calls[0])
        except BaseException:
            for task in others:
                task.cancel()
            raise
        return [first, *[await task for task in others]]

    # ------------------------------------------------------------------ keys

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _journal(self, label: str, *, counters: bool = False) -> Journal:
        kind = "counts" if counters else "journal"
        return Journal(
            f"{self.namespace}:~{kind}:{label}", f"{self.namespace}:~{kind}-repaired:{label}"
        )

    def _lock_key(self, name: str) -> str:
        return f"{self.namespace}:~lock:{name}"

    # ------------------------------------------------------------------ reads

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        if key in self._pending:  # this process's own write, not on any provider yet
            self._count("get", _FALLBACK)
            return self.fallback.peek(key)
        full = self._key(key)
        answers = await self._everywhere(
            [
                partial(p.read, full, [self._journal(q.label) for q in self._before[p.label]])
                for p in self.providers
            ]
        )
        trusted = self._trusted(answers, self._before)
        if trusted is None:
            return self._fallback_get(key)
        took = self._took(answers)
        self._answered(took)
        for p, (value, _) in trusted:
            if value is not None and await self._confirmed(p, full, took):
                self._count("get", p.label)
                return value
        self._count("get", "miss")
        return None

    async def _confirmed(self, p: RedisProvider, full: str, took: list[RedisProvider]) -> bool:
        """Whether no provider preferred over ``p`` that answered lists ``p`` as having
        missed ``full`` (a read asks those only when it would answer with ``p``'s value).
        Journal entries stay until they expire, so asking after reading is as good as
        asking at once; one that cannot be asked now is not held against ``p``."""
        for q in self._before[p.label]:
            if q in took:
                flags = await q.attempt(partial(q.flags, full, [self._journal(p.label)]))
                if flags is not MISSED and flags[0][0]:
                    return False
        return True

    def _trusted(
        self,
        answers: Sequence[tuple[T, list[tuple[bool, bool]]] | Missed],
        reports_on: dict[str, list[RedisProvider]],
    ) -> list[tuple[RedisProvider, tuple[T, list[tuple[bool, bool]]]]] | None:
        """The answers (in order of preference) of providers that no other answering one
        lists as having missed the key (each answer's flags are about the providers
        ``reports_on`` names for it); None when nobody answered. A provider listed as not
        repaired yet is reconciled in the background."""
        answered = [
            (p, answer)
            for p, answer in zip(self.providers, answers, strict=True)
            if answer is not MISSED
        ]
        if not answered:
            return None
        distrusted: set[str] = set()
        for p, (_, flags) in answered:
            for q, (listed, unrepaired) in zip(reports_on[p.label], flags, strict=True):
                if listed:
                    distrusted.add(q.label)
                if unrepaired:
                    self._suspect.add(q.label)
        return [(p, answer) for p, answer in answered if p.label not in distrusted]

    def _took(self, results: Sequence[object]) -> list[RedisProvider]:
        """The providers that did their part of an operation (``results`` in their order)."""
        return [p for p, r in zip(self.providers, results, strict=True) if r is not MISSED]

    def _fallback_get(self, key: str) -> bytes | None:
        self._fallback_active = True
        self._count("get", _FALLBACK)
        return self.fallback.peek(key)

    # ------------------------------------------------------------------ writes

    async def set(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        ttl_ms = check_ttl(ttl_seconds, self.max_ttl_seconds)
        await self._write("set", [check_key(key)], value, ttl_ms)

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._write("delete", [check_key(key) for key in keys], None, 0)

    async def _write(self, op: str, keys: list[str], value: bytes | None, ttl_ms: int) -> bool:
        """Set (one key) or delete ``keys`` everywhere; journal them for providers that
        missed. False when no provider took them durably (this process keeps them)."""
        full = [self._key(key) for key in keys]
        if value is None:
            calls = [partial(p.delete, full) for p in self.providers]
        else:
            calls = [partial(p.write, full[0], value, ttl_ms) for p in self.providers]
        results = await self._everywhere(calls)
        took = self._took(results)
        missed = [p for p in self.providers if p not in took]
        durable = bool(took)
        if took and missed:
            durable = await self._journal_missed(full, took, missed)
        if not durable:
            self._keep(keys, value, ttl_ms)
            self._count(op, _FALLBACK)
            return False
        for key in keys:
            self._pending.pop(key, None)
        self._answered(took)
        self._count(op, took[0].label)
        return True

    async def _journal_missed(
        self,
        full: list[str],
        took: list[RedisProvider],
        missed: list[RedisProvider],
        *,
        counters: bool = False,
    ) -> bool:
        journals = [self._journal(p.label, counters=counters) for p in missed]
        recorded = await asyncio.gather(
            *(p.attempt(partial(p.journal, full, journals, self._keep_ms)) for p in took)
        )
        self._suspect.update(p.label for p in missed)
        if all(r is MISSED for r in recorded):
            return False  # the write landed, but nothing says who missed it
        for p in missed:
            CACHE_JOURNALED.labels(self.name, p.label).inc(len(full))
        return True

    def _keep(self, keys: list[str], value: bytes | None, ttl_ms: int) -> None:
        """Every provider failed: answer from this process, invalidate them later."""
        self._fallback_active = True
        if value is None:
            self.fallback.discard(*keys)
        else:
            self.fallback.put(keys[0], value, ttl_ms / 1000)
        for key in keys:
            if key in self._pending or len(self._pending) < self.max_pending:
                self._pending[key] = None
            else:
                CACHE_PENDING_DROPPED.labels(self.name).inc()
                log.warning("cache_pending_full", cache=self.name, key=key)

    def _answered(self, by: Iterable[RedisProvider]) -> None:
        """Providers answered: leave the fallback, invalidate what was kept meanwhile, and
        reconcile those among them known to have missed writes."""
        for p in by:
            if p.label in self._suspect:
                self._suspect.discard(p.label)  # a write it misses again marks it again
                self._soon(f"reconcile:{p.label}", self._reconcile(p))
        if self._fallback_active:
            self._fallback_active = False
            self.fallback.clear()
            log.info("cache_fallback_left", cache=self.name, pending=len(self._pending))
        if self._pending:
            self._soon("replay", self._replay())

    async def _replay(self) -> None:
        while self._pending:
            batch = list(self._pending)[:500]
            for key in batch:
                del self._pending[key]
            if not await self._write("replay", batch, None, 0):
                return  # down again: _write kept them pending

    # ------------------------------------------------------------------ counters, locks

    async def incr(self, key: str, *, ttl_seconds: float, amount: int = 1) -> int:
        ttl_ms = check_ttl(ttl_seconds, self.max_ttl_seconds)
        full = self._key(check_key(key))
        answers = await self._everywhere(
            [
                partial(
                    p.incr,
                    full,
                    amount,
                    ttl_ms,
                    [self._journal(q.label, counters=True) for q in self._others[p.label]],
                )
                for p in self.providers
            ]
        )
        trusted = self._trusted(answers, self._others)
        if trusted is None:
            self._fallback_active = True
            self._count("incr", _FALLBACK)
            return self.fallback.add(key, amount, ttl_ms)
        took = self._took(answers)
        missed = [p for p in self.providers if p not in took]
        if missed:
            # Not durable when unrecorded, but a count is still better than none: answer.
            await self._journal_missed([full], took, missed, counters=True)
        self._answered(took)
        if trusted:
            source, (count, _) = trusted[0]
        else:  # every answer is listed as behind: the highest is the least behind
            source, count = took[0], max(a[0] for a in answers if a is not MISSED)
        self._count("incr", source.label)
        return count

    async def acquire_lock(self, name: str, *, ttl_seconds: float) -> Lock | None:
        ttl_ms = check_ttl(ttl_seconds, self.max_ttl_seconds)
        full, token = self._lock_key(check_key(name)), new_token()
        for p in self.providers:  # the first that answers decides
            got = await p.attempt(partial(p.try_lock, full, token, ttl_ms))
            if got is not MISSED:
                return Lock(name, token, p.label) if got else None
        return self.fallback.take_lock(name, ttl_ms)

    async def release_lock(self, lock: Lock) -> bool:
        if lock.where == self.fallback.name:
            return self.fallback.give_back(lock)
        for p in self.providers:
            if p.label == lock.where:
                released = await p.attempt(partial(p.unlock, self._lock_key(lock.name), lock.token))
                return released is True  # unreachable: it expires by its TTL
        return False

    # ------------------------------------------------------------------ reconciling

    async def reconcile(self) -> int:
        """Invalidate on every reachable provider the keys it missed; the number done."""
        done = 0
        for p in self.providers:
            done += await self._reconcile(p)
        return done

    async def _reconcile(self, missing: RedisProvider) -> int:
        done = 0
        for counters in (False, True):
            journal = self._journal(missing.label, counters=counters)
            for holder in self.providers:
                if holder is not missing:
                    done += await self._reconcile_from(holder, missing, journal, counters)
        if done:
            log.info("cache_reconciled", cache=self.name, provider=missing.label, keys=done)
        return done

    async def _reconcile_from(
        self, holder: RedisProvider, missing: RedisProvider, journal: Journal, counters: bool
    ) -> int:
        """Repair on ``missing`` the keys ``holder``'s ``journal`` lists as not repaired:
        delete values (a copy could overwrite a newer write racing it), raise counters to
        ``holder``'s; then mark them repaired."""
        done, cursor = 0, 0
        while True:
            page = await holder.attempt(partial(holder.unrepaired, journal, cursor))
            if page is MISSED:
                return done
            cursor, entries = page
            if entries:
                keys = [k.decode() for k in entries]
                if counters:
                    found = await holder.attempt(partial(holder.counts, keys))
                    if found is MISSED:
                        return done
                    live = {k: c for k, c in zip(keys, found, strict=True) if c is not None}
                    repair = partial(missing.raise_counts, live) if live else None
                else:
                    repair = partial(missing.delete, keys)
                if repair is not None and await missing.attempt(repair) is MISSED:
                    return done  # gone again: the journal stays for next time
                marked = await holder.attempt(
                    partial(holder.mark_repaired, journal, entries, self._keep_ms)
                )
                if marked is not MISSED:
                    done += marked
                    CACHE_RECONCILED.labels(self.name, missing.label).inc(marked)
            if cursor == 0:
                return done

    def _soon(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background unless work of that name is already running."""
        running = self._tasks.get(name)
        if running is not None and not running.done():
            work.close()
            return
        task = asyncio.get_running_loop().create_task(
            self._logged(name, work), name=f"cache:{self.name}:{name}"
        )
        self._tasks[name] = task

    async def _logged(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except Exception:  # a background repair must not die silently
            log.exception("cache_background_failed", cache=self.name, work=name)

    # ------------------------------------------------------------------ the rest

    def rate_limiter(self, *, namespace: str, window_seconds: int) -> RateLimiter:
        stores = []
        for p in self.providers:
            limiter = WindowLimiter.on_redis(
                p.url,
                namespace=f"{self.namespace}:~ratelimit:{namespace}",
                window_seconds=window_seconds,
                pool=p.pool,
            )
            stores.append((p, limiter))
        memory = WindowLimiter.in_memory(window_seconds=window_seconds)
        self._limiters += [memory, *(limiter for _, limiter in stores)]
        return FailoverLimiter(stores, memory, window_seconds=window_seconds)

    async def status(self) -> CacheStatus:
        providers = []
        for p in self.providers:
            journals = [self._journal(p.label), self._journal(p.label, counters=True)]
            pending = [
                await q.attempt(partial(q.pending, journals)) for q in self.providers if q is not p
            ]
            known = [count for count in pending if count is not MISSED]
            providers.append(
                ProviderStatus(p.label, p.breaker.snapshot(), max(known) if known else None)
            )
        return CacheStatus(
            self.name,
            "redis",
            tuple(providers),
            len(self.fallback),
            self._fallback_active,
            len(self._pending),
        )

    async def aclose(self) -> None:
        tasks = [task for task in self._tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for limiter in self._limiters:
            await limiter.aclose()
        for p in self.providers:
            await p.aclose()
