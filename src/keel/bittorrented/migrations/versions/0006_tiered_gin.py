"""a partial GIN on tsv per tier of each sort's key (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00

keel.bittorrented.search.ranking.TIER_BOUNDS cuts each sort's keys into ranges; a common word's
page is built range by range, asking each range's own GIN how many names there match (ADR
0005). The bounds are repeated here, not imported: a migration is a snapshot, and a test checks
the two agree. SQLite has no partial FTS5 and keeps its one index.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENS = 2**32
_MB = 2**20
_GB = 2**30


def _new_year(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


BOUNDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "relevance": (
        "relevance_key",
        tuple(t * _TOKENS for t in (5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 18, 22)),
    ),
    "seeders": ("seeders", (1, 2, 4, 8, 16, 64, 256, 1024)),
    "size": ("size", (100 * _MB, 700 * _MB, 2 * _GB, 5 * _GB, 15 * _GB)),
    "date": (
        "published_ts",
        tuple(_new_year(y) for y in (2016, 2018, 2020, 2022, 2023, 2024, 2025, 2026, 2027)),
    ),
}


def _indexes() -> list[tuple[str, str]]:
    """(name, predicate) of every tier's index; the predicate as search.sql.tier_predicate
    writes it, so the planner can prove a tier's query implies it."""
    out = []
    for sort, (column, bounds) in BOUNDS.items():
        edges: list[int | None] = [None, *bounds, None]
        for i in range(len(edges) - 1):
            low, high = edges[i], edges[i + 1]
            parts = []
            if low is not None:
                parts.append(f"{column} >= {low}")
            if high is not None:
                parts.append(f"{column} < {high}")
            out.append((f"ix_torrent_search_tsv_{sort}_{i:02d}", " AND ".join(parts)))
    return out


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for name, predicate in _indexes():
        op.execute(f"CREATE INDEX {name} ON torrent_search USING gin (tsv) WHERE {predicate}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _ in _indexes():
        op.execute(f"DROP INDEX {name}")
