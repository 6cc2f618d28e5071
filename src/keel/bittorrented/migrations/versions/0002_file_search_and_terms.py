"""file-name search and the term vocabulary for the fuzzy fallback

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "torrent_file_search",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("info_hash", sa.LargeBinary(length=20), nullable=False),
        sa.Column("file_index", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["info_hash"],
            ["torrents.info_hash"],
            name=op.f("fk_torrent_file_search_info_hash_torrents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_torrent_file_search")),
    )
    op.create_index(
        "ix_torrent_file_search_info_hash",
        "torrent_file_search",
        ["info_hash", "file_index"],
        unique=True,
    )
    op.create_table(
        "search_terms",
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_search_terms")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE torrent_file_search ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, tokens)) STORED"
        )
        op.execute("CREATE INDEX ix_torrent_file_search_tsv ON torrent_file_search USING gin (tsv)")
        # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_search_terms_trgm ON search_terms USING gin (term gin_trgm_ops)"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE torrent_file_search_fts USING fts5(tokens, "
            "content='torrent_file_search', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER torrent_file_search_ai AFTER INSERT ON torrent_file_search BEGIN "
            "INSERT INTO torrent_file_search_fts(rowid, tokens) VALUES (new.id, new.tokens); END"
        )
        op.execute(
            "CREATE TRIGGER torrent_file_search_ad AFTER DELETE ON torrent_file_search BEGIN "
            "INSERT INTO torrent_file_search_fts(torrent_file_search_fts, rowid, tokens) "
            "VALUES ('delete', old.id, old.tokens); END"
        )
        # The trigram tokenizer makes every 3-character substring of a term searchable.
        op.execute(
            "CREATE VIRTUAL TABLE search_terms_trgm USING fts5(term, content='search_terms', "
            "tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER search_terms_ai AFTER INSERT ON search_terms BEGIN "
            "INSERT INTO search_terms_trgm(rowid, term) VALUES (new.rowid, new.term); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("torrent_file_search_ai", "torrent_file_search_ad", "search_terms_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_terms_trgm")
        op.execute("DROP TABLE IF EXISTS torrent_file_search_fts")
    op.drop_table("search_terms")
    op.drop_index("ix_torrent_file_search_info_hash", "torrent_file_search")
    op.drop_table("torrent_file_search")
