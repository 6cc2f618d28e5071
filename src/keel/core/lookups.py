"""Single-row reads by key for an API's hottest paths (an API key by its hash, a payment by id).

Through SQLAlchemy a lookup by primary key costs about 200 microseconds on SQLite: a pooled
connection, a deferred BEGIN, the statement, a ROLLBACK, and the execution context around each.
SQLite itself answers it in under ten. On an engine made with ``inline_reads`` (SQLite),
:class:`Lookups` runs a prepared statement on a connection of its own that is read-only
(``PRAGMA query_only``) and in autocommit mode, so each SELECT is its own WAL snapshot, on the
event loop's thread. What makes it a SQLAlchemy statement still comes from SQLAlchemy: the SQL
is compiled by the engine's dialect, and parameters and columns pass through the same type
processors, so a row reads exactly as ``conn.execute(statement).one_or_none()`` would give it.

A read that runs past ``sqlite_dbapi.INLINE_STEP_BUDGET`` VM steps is interrupted and runs
again through the engine, as every lookup does on other engines (PostgreSQL).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Result, Row
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import db, sqlite_dbapi

__all__ = ["Lookups"]

_Processor = Callable[[Any], Any] | None
# Statements are meant to be built once, at import; a caller that builds one per call would
# grow the cache, so it is emptied past this many.
_MAX_PREPARED = 256


@dataclass(frozen=True, slots=True)
class _Prepared:
    sql: str
    compiled: Any  # the dialect's SQLCompiler: fills in parameters and literal binds
    binds: tuple[tuple[str, _Processor], ...]  # in the SQL's positional order
    columns: tuple[_Processor, ...]
    metadata: SimpleResultMetaData


class Lookups:
    """Prepared single-row reads on ``engine``; :meth:`aclose` before the engine is disposed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect
        database = engine.url.database or ""
        self._path = (
            database
            if db.is_sqlite(engine)
            and getattr(dialect.loaded_dbapi, "inline_reads", False)
            and database not in ("", ":memory:")
            else None
        )
        self._conn: sqlite3.Connection | None = None
        self._prepared: dict[Select[Any], _Prepared] = {}

    @property
    def inline(self) -> bool:
        """Whether lookups run on the event loop's own read connection."""
        return self._path is not None

    async def one_or_none(self, statement: Select[Any], **params: Any) -> Row[Any] | None:
        """The one row ``statement`` selects with ``params`` (bound by name), or None.

        Raises ``sqlalchemy.exc.MultipleResultsFound`` when there is more than one.
        """
        if self._path is not None:
            rows = self._run_inline(statement, params)
            if rows is not None:
                prepared = self._prepared[statement]
                result: Result[Any] = IteratorResult(prepared.metadata, iter(rows))
                return result.one_or_none()
        async with db.reading(self._engine) as conn:
            result = await conn.execute(statement, params)
            return result.one_or_none()

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run_inline(self, statement: Select[Any], params: dict[str, Any]) -> list[Any] | None:
        prepared = self._prepared.get(statement) or self._prepare(statement)
        values = prepared.compiled.construct_params(params)
        positional = [
            process(values[name]) if process else values[name] for name, process in prepared.binds
        ]
        conn = self._connection()
        rows = sqlite_dbapi.read_bounded(conn, prepared.sql, positional)
        if rows is None:
            return None  # too long for the loop: through the engine, on its thread
        processors = prepared.columns
        return [
            tuple(p(v) if p else v for p, v in zip(processors, raw, strict=True)) for raw in rows
        ]

    def _prepare(self, statement: Select[Any]) -> _Prepared:
        dialect = self._engine.dialect
        compiled: Any = statement.compile(dialect=dialect)
        order = compiled.positiontup or ()
        binds = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in order
        )
        selected = list(statement.selected_columns)
        columns = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected
        )
        keys = list(statement.selected_columns.keys())
        prepared = _Prepared(compiled.string, compiled, binds, columns, SimpleResultMetaData(keys))
        if len(self._prepared) >= _MAX_PREPARED:
            self._prepared.clear()
        self._prepared[statement] = prepared
        return prepared

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self._path is not None
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,  # autocommit: each SELECT is its own snapshot
                timeout=db.SQLITE_BUSY_TIMEOUT_MS / 1000,
            )
            conn.execute("PRAGMA query_only = ON")  # nothing can write through it
            self._conn = conn
        return self._conn
