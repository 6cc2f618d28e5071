"""A product's database as its code sees it: reads and writes, possibly on two servers.

Domain code asks for :meth:`Database.reading` or :meth:`Database.writing` and never picks an
engine itself. With only a primary both go there (the embedded default). With a streaming
replica configured (PostgreSQL), reads go to the primary while it is healthy and to the replica
while it is not; writes only ever go to the primary, and while it is down they are refused with
:class:`PrimaryUnavailable` (503 with ``Retry-After``), never sent anywhere else: the replica does
not replicate back, so a write there would be split-brain (ADR 0031).

Errors, all :class:`~keel.core.errors.Unavailable` (503):

PrimaryUnavailable        the primary is down, refusing connections, or not a primary
└── CommitOutcomeUnknown  the connection was lost during COMMIT: applied or not, nobody knows
ReplicaUnavailable        a read found neither the primary nor the replica
StatementTimeout          the server cancelled a statement that ran past ``statement_timeout``

The primary's health is a :class:`~keel.core.resilience.CircuitBreaker` fed by every call on
it. While it is open nothing is sent to the primary; every ``probe_seconds`` the next call is the
probe (on a new connection, which must answer ``pg_is_in_recovery() = false``), and its success
closes the breaker: writes resume and reads return to the primary on their own.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.core import db
from keel.core.errors import Unavailable
from keel.core.resilience import CircuitBreaker, CircuitOpen

__all__ = [
    "CommitOutcomeUnknown",
    "Database",
    "PrimaryUnavailable",
    "ReplicaUnavailable",
    "StatementTimeout",
    "is_unavailable",
]

T = TypeVar("T")

# SQLSTATEs saying the server went away or cannot serve now, besides class 08 (connection
# exception): admin or crash shutdown, "cannot connect now" (starting or stopping), too many
# connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"  # statement_timeout (or pg_cancel_backend)

READS = Counter(
    "keel_database_reads_total",
    "Read transactions by the server that served them (primary/replica).",
    ["name", "server"],
)
WRITES_REFUSED = Counter(
    "keel_database_writes_refused_total",
    "Writes refused while the primary was down (primary_unavailable) or whose COMMIT lost its "
    "connection (commit_outcome_unknown).",
    ["name", "code"],
)


class PrimaryUnavailable(Unavailable):
    """The primary database is unavailable; writes are refused until it is back."""

    code = "primary_unavailable"
    title = "Primary database unavailable"


class CommitOutcomeUnknown(PrimaryUnavailable):
    """The connection to the primary was lost while committing: the write may or may not have
    been applied. Retry it with the same idempotency key (see keel.core.idempotency)."""

    code = "commit_outcome_unknown"
    title = "Commit outcome unknown"


class ReplicaUnavailable(Unavailable):
    """Neither the primary nor its replica answered the read."""

    code = "database_unavailable"
    title = "Database unavailable"


class StatementTimeout(Unavailable):
    """The database cancelled a statement that ran longer than its statement timeout."""

    code = "statement_timeout"
    title = "Statement timeout"


def _sqlstate(exc: BaseException) -> str:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(orig, "sqlstate", None) or "")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the server is unreachable or went away, not that it refused the
    statement: a refused or reset connection, a connect timeout (``TimeoutError`` is an
    ``OSError``), no pooled connection freed in time, a connection the driver reported lost,
    or one of the SQLSTATEs above."""
    if isinstance(exc, OSError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    return state.startswith("08") or state in _UNAVAILABLE_SQLSTATES


def _failure(exc: Exception, *, connected: bool, committing: bool = False) -> Unavailable | None:
    """Our error for ``exc`` raised on a connection to one server, or None to let it through.

    Once connected, only the driver's errors count: an ``OSError`` from the caller's own code
    in the block (a file it opened) says nothing about the database."""
    if connected and not isinstance(exc, DBAPIError):
        return None
    if is_unavailable(exc):
        # Retry soon: the next call may find it back, or be the breaker's probe.
        return (CommitOutcomeUnknown if committing else PrimaryUnavailable)(retry_after=1)
    if _sqlstate(exc) == _QUERY_CANCELED:
        return StatementTimeout()
    return None


def _require_primary(engine: AsyncEngine) -> None:
    """Check every new connection of ``engine`` is to a primary: a standby at the primary's
    address (a replica rebuilt there, a mistyped URL) must get no writes and no probe's trust."""

    @event.listens_for(engine.sync_engine, "connect")
    def _check(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT pg_is_in_recovery()")
            in_recovery = cursor.fetchone()[0]
        finally:
            cursor.close()
            # End the transaction the driver opened for the check: the connection's first
            # user must begin its own (a read-only one for reads).
            dbapi_connection.rollback()
        if in_recovery:
            raise PrimaryUnavailable(
                "The server at the primary's address is a standby (in recovery); "
                "it is not written to",
                retry_after=1,
            )


class Database:
    """The primary engine and, optionally, a read-only streaming replica of it.

    ``breaker`` holds the primary's health (metrics label ``<name>-primary``): it opens once at
    least 3 calls in the last 5 s were made and half of them found the primary unavailable;
    while it is open the primary is probed every ``probe_seconds``.
    """

    def __init__(
        self,
        primary: AsyncEngine,
        replica: AsyncEngine | None = None,
        *,
        name: str = "database",
        probe_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self.primary = primary
        self.replica = replica
        self.breaker = CircuitBreaker(
            f"{name}-primary",
            failure_rate_threshold=0.5,
            minimum_calls=3,
            window_seconds=5.0,
            open_seconds=probe_seconds,
            # One probe at a time; the other calls keep reading from the replica meanwhile.
            half_open_max_calls=1,
            # Only the primary's absence; a statement it refused means it is up.
            failure_on=(PrimaryUnavailable,),
        )
        if db.is_postgres(primary):
            _require_primary(primary)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection: on the primary while it is up, else on the replica.

        The choice is made when the block starts. If the primary goes away *during* the block
        the block cannot be replayed here, so it raises :class:`PrimaryUnavailable`
        (``Retry-After: 1``; the retry reads from the replica): use :meth:`read` for reads that
        must not fail then. On PostgreSQL the transaction is ``READ ONLY`` on either server,
        so a write in a read block fails the same way whichever server serves it.
        """
        started = False
        try:
            async with self._on_primary(read_only=True) as connection:
                started = True
                READS.labels(self.name, "primary").inc()
                yield connection
            return
        except PrimaryUnavailable:
            if started or self.replica is None:
                raise
        async with self._on_replica() as connection:
            yield connection

    async def read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``await fn(connection)`` in :meth:`reading`; if the primary goes away while ``fn``
        runs, ``fn`` runs again on the replica, so a read fails only when both are down.
        ``fn`` must only read: it may run twice."""
        try:
            async with self.reading() as connection:
                return await fn(connection)
        except PrimaryUnavailable:
            if self.replica is None:
                raise
        async with self._on_replica() as connection:
            return await fn(connection)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction on the primary: commits when the block ends.

        Raises :class:`PrimaryUnavailable` (nothing was applied) when the primary is down or
        goes away before the commit, with ``Retry-After`` until the breaker's next probe, and
        :class:`CommitOutcomeUnknown` when it goes away during the commit; in both cases a
        retry with the same idempotency key applies the write exactly once.
        """
        try:
            async with self._on_primary(read_only=False) as connection:
                yield connection
        except PrimaryUnavailable as exc:
            WRITES_REFUSED.labels(self.name, exc.code).inc()
            raise

    async def dispose(self) -> None:
        await self.primary.dispose()
        if self.replica is not None:
            await self.replica.dispose()

    @asynccontextmanager
    async def _on_primary(self, *, read_only: bool) -> AsyncIterator[AsyncConnection]:
        admitted = connected = committing = False
        try:
            async with self.breaker.guard():
                admitted = True
                try:
                    async with (db.reading if read_only else db.writing)(self.primary) as conn:
                        if read_only and db.is_postgres(self.primary):
                            await conn.execution_options(postgresql_readonly=True)
                        connected = True
                        yield conn
                        committing = not read_only
                except Exception as exc:
                    failure = _failure(exc, connected=connected, committing=committing)
                    if failure is None:
                        raise
                    raise failure from exc
        except CircuitOpen as exc:
            if admitted:
                raise  # another breaker's, from inside the block
            retry_in = exc.extra.get("retry_in")
            seconds = retry_in if isinstance(retry_in, int | float) else 1.0
            raise PrimaryUnavailable(
                "The primary database is down; retry once it is probed again",
                retry_after=max(1, math.ceil(seconds)),
            ) from exc

    @asynccontextmanager
    async def _on_replica(self) -> AsyncIterator[AsyncConnection]:
        assert self.replica is not None
        connected = False
        try:
            async with db.reading(self.replica) as conn:
                connected = True
                READS.labels(self.name, "replica").inc()
                yield conn
        except Exception as exc:
            failure = _failure(exc, connected=connected)
            if failure is None:
                raise
            if isinstance(failure, PrimaryUnavailable):
                failure = ReplicaUnavailable(retry_after=1)
            raise failure from exc
