"""the date tiers' partial GINs named for their years, so a job can roll them (PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 04:00:00

Migration 0006 cut the date sort at fixed years up to 2027, its indexes named by position; from
2028 its top tier would take every new name. The tiers now roll with the clock
(keel.bittorrented.search.ranking.date_tier_years) and keel.bittorrented.search.tier_indexes
makes next year's indexes ahead, naming each for its years; this renames 0006's to match
(catalog only, nothing is rebuilt). The names are repeated here, not imported: a migration is a
snapshot, and a test checks they agree with tier_indexes.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_YEARS = (2016, 2018, 2020, 2022, 2023, 2024, 2025, 2026, 2027)


def _tiers() -> list[tuple[str, str, str]]:
    """(0006's name, the name for the tier's years, the predicate) of each date tier."""
    edges: list[int | None] = [None, *_YEARS, None]
    out = []
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1]
        parts = []
        if low is not None:
            parts.append(f"published_ts >= {int(datetime(low, 1, 1, tzinfo=UTC).timestamp())}")
        if high is not None:
            parts.append(f"published_ts < {int(datetime(high, 1, 1, tzinfo=UTC).timestamp())}")
        years = (
            f"until_{high}" if low is None else f"from_{low}" if high is None else f"{low}_{high}"
        )
        out.append(
            (
                f"ix_torrent_search_tsv_date_{i:02d}",
                f"ix_torrent_search_tsv_date_{years}",
                " AND ".join(parts),
            )
        )
    return out


RENAMES: dict[str, str] = {old: new for old, new, _ in _tiers()}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for old, new in RENAMES.items():
        op.execute(f"ALTER INDEX {old} RENAME TO {new}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    listed = text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'torrent_search' AND indexname LIKE :prefix"
    )
    present = set(bind.execute(listed, {"prefix": r"ix\_torrent\_search\_tsv\_date\_%"}).scalars())
    # The job's indexes of later years go; 0006's take their names back, and the one the job
    # dropped (0006's top, once 2027 has begun) is made again.
    for name in sorted(present - set(RENAMES.values())):
        op.execute(f"DROP INDEX {name}")
    for old, new, predicate in _tiers():
        if new in present:
            op.execute(f"ALTER INDEX {new} RENAME TO {old}")
        else:
            op.execute(f"CREATE INDEX {old} ON torrent_search USING gin (tsv) WHERE {predicate}")
