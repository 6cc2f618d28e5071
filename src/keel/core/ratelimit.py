"""Fixed-window rate limits stored in the product's database, so they survive a restart and
are shared by every process on the same database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.core.clock import Clock


def rate_limit_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("bucket", String(120), primary_key=True),
        Column("window_start", BigInteger, primary_key=True),
        Column("count", Integer, nullable=False),
    )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


class SqlRateLimiter:
    """Counts hits per (bucket, window) with one upsert; old windows are pruned lazily."""

    def __init__(
        self,
        table: Table,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        window_seconds: int = 60,
    ) -> None:
        self.table = table
        self.sessions = sessions
        self.clock = clock
        self.window = window_seconds

    async def hit(self, limits: dict[str, int]) -> Verdict:
        """Count one request against every bucket (name -> limit); the tightest one decides."""
        now = int(self.clock.now().timestamp())
        start = now - now % self.window
        verdicts: list[Verdict] = []
        async with self.sessions() as session, session.begin():
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            for bucket, limit in sorted(limits.items()):
                stmt = (
                    insert(self.table)
                    .values(bucket=bucket, window_start=start, count=1)
                    .on_conflict_do_update(
                        index_elements=["bucket", "window_start"],
                        set_={"count": self.table.c.count + 1},
                    )
                    .returning(self.table.c.count)
                )
                count = int((await session.execute(stmt)).scalar_one())
                verdicts.append(
                    Verdict(count <= limit, limit, max(0, limit - count), start + self.window)
                )
                if count == 1:  # first hit of a new window: drop this bucket's old windows
                    await session.execute(
                        delete(self.table).where(
                            self.table.c.bucket == bucket, self.table.c.window_start < start
                        )
                    )
        return min(verdicts, key=lambda v: (v.allowed, v.remaining))
