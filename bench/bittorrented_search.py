"""bittorrented search: ours against naive ILIKE and the original's longest-word-first.

1. Load ``--rows`` generated releases (``bittorrented_names``) through
   ``keel.bittorrented.catalog.bulk`` into a dedicated database, with a progress bar, and report
   rows/s. On PostgreSQL the non-unique indexes are dropped first and built again after the
   last batch, as pg_restore does (the unique ones stay: ``ON CONFLICT`` needs them); rows/s
   counts both. The database is kept
   (PostgreSQL ``keel_bench_bt_<rows>``, SQLite ``var/bench/bittorrented-<rows>.db``), so a
   re-run that finds ``--rows`` rows skips the load and reports the figures recorded then;
   ``--reload`` starts afresh. Then ``VACUUM ANALYZE`` (ANALYZE on SQLite), and on PostgreSQL
   the expression index the original searches with.
2. Build the exact answers: every name is read back, tokenised in Python and put in an
   in-memory inverted index; each query's first page is then computed by the reference
   semantics ``keel.bittorrented.search.query.matches`` (the brute force the exactness test uses),
   so no method is checked against itself.
3. Run the query set (``bittorrented_queries``: rare and common words, multi-word, phrases,
   exclusions, OR, prefixes, words that never meet), each with every ``--sort``, through

   * **ours**: ``bootstrap.search_engine`` (count + first page of 50, as the API does);
   * **ilike**: every word ``name ILIKE '%w%'``, ``NOT ILIKE`` for exclusions, an OR as OR,
     ordered by the same sort key, LIMIT 50 (``LIKE`` on SQLite, which folds ASCII case);
   * **longest-word-first** (PostgreSQL): the original's ``search_all_torrents``: phase 1
     ``to_tsvector('simple', name) @@ plainto_tsquery('simple', longest word)`` LIMIT 5000
     over its GIN expression index, phase 2 ILIKE for the other words, phrases and
     exclusions, then the sort and LIMIT 50. It has no OR and no prefix: ``|`` is dropped
     and ``*`` stripped, which is as kind as it gets.

   A warm-up pass runs first and is not timed. Every statement has a ``--timeout``. A
   method's answer is *exact* when its first page equals the reference's first page.
   ILIKE scans every name, so at large sizes it runs on a random ``--ilike-sample`` of the
   query runs (the report says how many).

    .venv/bin/python bench/bittorrented_search.py --engine postgresql --rows 10000000
    .venv/bin/python bench/bittorrented_search.py --engine sqlite --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import sqlite3
import sys
import time
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import bittorrented_names as names
import bittorrented_queries as queries
from keel.bittorrented import bootstrap
from keel.bittorrented.catalog import bulk
from keel.bittorrented.errors import SearchTimeout
from keel.bittorrented.search.base import SearchRequest, Sort
from keel.bittorrented.search.query import Phrase, Query, matches, parse
from keel.bittorrented.search.ranking import SORT_COLUMNS, descending
from keel.bittorrented.search.tokens import tokenize
from keel.core import db

DEFAULT_PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PAGE = 50
ORIGINAL_CANDIDATES = 5000  # the original's phase-1 cap
ORIGINAL_INDEX = "bench_torrents_name_fts"
METHODS = ("ours", "ilike", "longest-word-first")
NOW = datetime(2026, 12, 1, tzinfo=UTC)

err = Console(stderr=True)


def log(message: str) -> None:
    err.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {message}")


# ---------------------------------------------------------------------------------------------
# The database: create, load, analyse, and remember what the load cost.


def default_url(engine: str, rows: int) -> str:
    if engine == "postgresql":
        return make_url(DEFAULT_PG_ADMIN).set(database=f"keel_bench_bt_{rows}").render_as_string()
    return f"sqlite+aiosqlite:///var/bench/bittorrented-{rows}.db"


async def _admin(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )


async def recreate(url: str, *, drop: bool) -> None:
    """Make sure the database exists; with ``drop``, empty first."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if drop:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - once, at start
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    name = parsed.database
    conn = await _admin(url)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@dataclass
class LoadFacts:
    rows: int
    load_seconds: float  # the batches and the deferred index builds
    index_seconds: float  # of which: building the deferred indexes (PostgreSQL)
    maintenance_seconds: float  # VACUUM ANALYZE / ANALYZE
    original_index_seconds: float
    loaded_at: str
    batch_size: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.load_seconds if self.load_seconds else 0.0


_FACTS_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_load_facts (rows BIGINT, load_seconds FLOAT, "
    "index_seconds FLOAT, maintenance_seconds FLOAT, original_index_seconds FLOAT, "
    "loaded_at TEXT, batch_size INT)"
)


async def stored_facts(engine: AsyncEngine) -> LoadFacts | None:
    async with engine.begin() as conn:
        await conn.execute(text(_FACTS_DDL))
        row = (await conn.execute(text("SELECT * FROM bench_load_facts"))).first()
    return None if row is None else LoadFacts(*row)


async def save_facts(engine: AsyncEngine, facts: LoadFacts) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(_FACTS_DDL))
        await conn.execute(text("DELETE FROM bench_load_facts"))
        await conn.execute(
            text(
                "INSERT INTO bench_load_facts VALUES (:rows, :load_seconds, :index_seconds, "
                ":maintenance_seconds, :original_index_seconds, :loaded_at, :batch_size)"
            ),
            facts.__dict__,
        )


async def row_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM torrent_search"))).scalar_one())


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


_SECONDARY_INDEXES = """
SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index x
JOIN pg_class c ON c.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND NOT x.indisunique AND t.relname NOT LIKE 'bench_%'
ORDER BY c.relname
"""


async def drop_secondary_indexes(engine: AsyncEngine) -> list[tuple[str, str]]:
    """Drop the non-unique indexes (PostgreSQL) and return their definitions, to build each
    once, sorted, after the load instead of inserting into it 10M times."""
    if not db.is_postgres(engine):
        return []
    async with engine.begin() as conn:
        found = [(r[0], r[1]) for r in await conn.execute(text(_SECONDARY_INDEXES))]
        for name, _ in found:
            await conn.execute(text(f'DROP INDEX "{name}"'))
    return found


async def build_indexes(engine: AsyncEngine, definitions: list[tuple[str, str]]) -> float:
    started = time.perf_counter()
    if not definitions:
        return 0.0
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SET maintenance_work_mem = '1GB'"))
        for name, definition in definitions:
            log(f"building {name}")
            await conn.execute(text(definition))
    return time.perf_counter() - started


async def load(engine: AsyncEngine, rows: int, batch_size: int, seed: int) -> tuple[float, float]:
    """Seconds for the whole load, and of those for building the deferred indexes."""
    corpus = names.Corpus(rows=rows, seed=seed)
    started = time.perf_counter()
    deferred = await drop_secondary_indexes(engine)
    with progress_bar() as bar:
        task = bar.add_task("load", total=rows, rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / (time.perf_counter() - started)
            bar.update(task, advance=n, rate=f"{rate:,.0f} rows/s")

        result = await bulk.load(
            engine, names.entries(corpus, rows), now=NOW, batch_size=batch_size, progress=advance
        )
    if result.new != rows:
        raise SystemExit(f"loaded {result.new} new torrents, expected {rows}")
    log(f"batches done in {time.perf_counter() - started:,.0f} s; {len(deferred)} indexes to build")
    index_seconds = await build_indexes(engine, deferred)
    return time.perf_counter() - started, index_seconds


async def maintain(engine: AsyncEngine) -> float:
    """VACUUM ANALYZE (PostgreSQL) or ANALYZE (SQLite): statistics for the planner, and on
    PostgreSQL the GIN pending list merged and the visibility map set, as autovacuum would
    leave a table in steady state."""
    started = time.perf_counter()
    if db.is_postgres(engine):
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("SET maintenance_work_mem = '1GB'"))
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def original_index(engine: AsyncEngine) -> float:
    """The original's expression index (``idx_torrents_name_fts``), under a bench name."""
    if not db.is_postgres(engine):
        return 0.0
    started = time.perf_counter()
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SET maintenance_work_mem = '1GB'"))
        await conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {ORIGINAL_INDEX} ON torrents "
                "USING gin (to_tsvector('simple', name))"
            )
        )
        await conn.execute(text("ANALYZE torrents"))
    return time.perf_counter() - started


async def prepare_database(args: argparse.Namespace) -> tuple[AsyncEngine, LoadFacts]:
    url = args.database_url or default_url(args.engine, args.rows)
    await recreate(url, drop=args.reload)
    engine = await bootstrap.open_database(url)
    facts = await stored_facts(engine)
    if facts is not None and facts.rows == args.rows and await row_count(engine) == args.rows:
        log(f"{url}: already holds {args.rows:,} rows (loaded {facts.loaded_at}), no load")
        return engine, facts
    if await row_count(engine):
        await engine.dispose()
        log(f"{url}: holds another corpus, starting afresh")
        await recreate(url, drop=True)
        engine = await bootstrap.open_database(url)
    log(f"loading {args.rows:,} rows into {url}")
    seconds, index_seconds = await load(engine, args.rows, args.batch, args.seed)
    log(
        f"loaded in {seconds:,.0f} s ({args.rows / seconds:,.0f} rows/s, "
        f"{index_seconds:,.0f} s of it building indexes); vacuum/analyze"
    )
    maintenance = await maintain(engine)
    log(f"maintenance {maintenance:,.0f} s; the original's index")
    index = await original_index(engine)
    facts = LoadFacts(
        args.rows,
        seconds,
        index_seconds,
        maintenance,
        index,
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        args.batch,
    )
    await save_facts(engine, facts)
    return engine, facts


# ---------------------------------------------------------------------------------------------
# The exact answers: an inverted index in memory and the reference semantics.


class Reference:
    """Every name's tokens, posting lists and each sort's full order, read back from the
    database; ``first_page`` applies ``keel.bittorrented.search.query.matches`` to candidates."""

    def __init__(self, sorts: Sequence[Sort]) -> None:
        self.sorts = sorts
        self.tokens: list[str] = [""]  # by id; ids of a fresh load are dense from 1
        self.postings: dict[str, array[int]] = defaultdict(lambda: array("l"))
        self.order: dict[Sort, array[int]] = {}
        self.rank: dict[Sort, array[int]] = {}
        self._vocabulary: list[str] = []

    async def build(self, engine: AsyncEngine, rows: int) -> None:
        columns = ", ".join(f"s.{SORT_COLUMNS[sort]}" for sort in self.sorts)
        keys: dict[Sort, list[int]] = {sort: [0] for sort in self.sorts}
        chunk = 200_000
        with progress_bar() as bar:
            task = bar.add_task("reference", total=rows, rate="")
            async with engine.connect() as conn:
                top = int(
                    (await conn.execute(text("SELECT max(id) FROM torrent_search"))).scalar_one()
                    or 0
                )
                for lo in range(0, top, chunk):
                    result = await conn.execute(
                        text(
                            f"SELECT s.id, t.name, {columns} FROM torrent_search s "  # noqa: S608
                            "JOIN torrents t ON t.info_hash = s.info_hash "
                            "WHERE s.id > :lo AND s.id <= :hi ORDER BY s.id"
                        ),
                        {"lo": lo, "hi": lo + chunk},
                    )
                    fetched = result.all()
                    for row in fetched:
                        row_id = row[0]
                        while len(self.tokens) < row_id:  # a gap: a row that is not there
                            self.tokens.append("")
                            for sort in self.sorts:
                                keys[sort].append(0)
                        tokens = tokenize(row[1])
                        self.tokens.append(" ".join(tokens))
                        for token in set(tokens):
                            self.postings[token].append(row_id)
                        for i, sort in enumerate(self.sorts):
                            keys[sort].append(row[2 + i])
                    bar.update(task, advance=len(fetched))
        self._vocabulary = sorted(self.postings)
        ids = [i for i in range(1, len(self.tokens)) if self.tokens[i]]
        shift = len(self.tokens).bit_length()
        for sort in self.sorts:
            column = keys[sort]
            # One integer per row, (key, id) packed, sorts several times faster than tuples.
            ordered = sorted(ids, key=lambda i: (column[i] << shift) | i)
            if descending(sort, "desc"):
                ordered.reverse()
            self.order[sort] = array("l", ordered)
            rank = array("l", bytes(8 * len(self.tokens)))
            for position, row_id in enumerate(ordered):
                rank[row_id] = position
            self.rank[sort] = rank

    def _prefixed(self, prefix: str) -> list[str]:
        lo = bisect_left(self._vocabulary, prefix)
        hi = bisect_left(self._vocabulary, prefix + "\x7f")
        return self._vocabulary[lo:hi]

    def _alternative(self, phrase: Phrase) -> set[int]:
        """A superset of the names holding ``phrase``: the rarest of its whole words."""
        exact = phrase.tokens[:-1] if phrase.prefix else phrase.tokens
        if exact:
            rarest = min(exact, key=lambda t: len(self.postings.get(t, ())))
            return set(self.postings.get(rarest, ()))
        found: set[int] = set()
        for token in self._prefixed(phrase.tokens[-1]):
            found.update(self.postings[token])
        return found

    def candidates(self, query: Query) -> set[int] | None:
        """A superset of the matches (None: every row)."""
        sets = []
        for clause in query.positive:
            union: set[int] = set()
            for phrase in clause.alternatives:
                union |= self._alternative(phrase)
            sets.append(union)
        if not sets:
            return None
        sets.sort(key=len)
        found = sets[0]
        for other in sets[1:]:
            found = found & other
        return found

    def first_page(self, query: Query, sort: Sort, candidates: set[int] | None) -> list[int]:
        tokens = self.tokens
        page: list[int] = []
        if candidates is None or len(candidates) * 50 > len(tokens):
            walk: Any = self.order[sort]  # common: walk the order, stop at a full page
        else:
            walk = sorted(candidates, key=self.rank[sort].__getitem__)
        for row_id in walk:
            if (candidates is None or row_id in candidates) and matches(
                query, tokens[row_id].split(" ")
            ):
                page.append(row_id)
                if len(page) == PAGE:
                    break
        return page


# ---------------------------------------------------------------------------------------------
# The three methods. Each returns the first page's ids, or raises Timeout.


class Timeout(Exception):
    pass


async def _timed_rows(
    engine: AsyncEngine, sql: str, params: dict[str, Any], seconds: float
) -> list[int]:
    """Run a bench statement under a deadline on either engine."""
    async with engine.connect() as conn:
        if db.is_postgres(engine):
            try:
                async with conn.begin():
                    await conn.execute(text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}"))
                    return [r[0] for r in await conn.execute(text(sql), params)]
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == "57014":
                    raise Timeout from exc
                raise
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        # Interrupt the statement at the deadline rather than cancel the await: a cancelled
        # await makes SQLAlchemy close the connection while the statement still runs in
        # aiosqlite's thread, and the interrupt then has no connection to reach.
        fired: list[asyncio.Future[Any]] = []

        def interrupt() -> None:
            fired.append(asyncio.ensure_future(driver.interrupt()))

        deadline = asyncio.get_running_loop().call_later(seconds, interrupt)
        try:
            return [r[0] for r in await conn.execute(text(sql), params)]
        except DBAPIError as exc:
            if fired:
                raise Timeout from exc
            raise
        finally:
            deadline.cancel()


def _order_by(sort: Sort) -> str:
    direction = "DESC" if descending(sort, "desc") else "ASC"
    return f"ORDER BY s.{SORT_COLUMNS[sort]} {direction}, s.id {direction}"


def ilike_sql(query: Query, sort: Sort, postgres: bool) -> tuple[str, dict[str, Any]]:
    """Every phrase a substring of the name (its words joined by spaces), as typed."""
    like = "ILIKE" if postgres else "LIKE"
    params: dict[str, Any] = {}
    conditions = []
    for c, clause in enumerate(query.clauses):
        alternatives = []
        for a, phrase in enumerate(clause.alternatives):
            params[f"p{c}_{a}"] = "%" + " ".join(phrase.tokens) + "%"
            alternatives.append(f"t.name {like} :p{c}_{a}")
        either = " OR ".join(alternatives)
        conditions.append(f"NOT ({either})" if clause.negated else f"({either})")
    sql = (
        "SELECT s.id FROM torrent_search s JOIN torrents t ON t.info_hash = s.info_hash "  # noqa: S608
        f"WHERE {' AND '.join(conditions) or 'TRUE'} {_order_by(sort)} LIMIT {PAGE}"
    )
    return sql, params


@dataclass(frozen=True)
class OriginalTerms:
    """The original's parse: lower-case, quoted phrases, ``-`` exclusions, other words."""

    words: list[str]
    phrases: list[str]
    exclusions: list[str]

    @classmethod
    def parse(cls, query_text: str) -> OriginalTerms:
        lowered = query_text.lower()
        phrases = re.findall(r'(?<!-)"([^"]+)"', lowered)
        excluded_phrases = re.findall(r'-"([^"]+)"', lowered)
        rest = re.sub(r'-?"[^"]*"\*?', " ", lowered)
        words, exclusions = [], list(excluded_phrases)
        for word in rest.split():
            word = word.rstrip("*")  # no prefix search; a substring covers it
            if word in ("", "|", "-"):
                continue  # no OR either: both sides become required words
            if word.startswith("-") and len(word) > 1:
                exclusions.append(word[1:])
            else:
                words.append(word)
        return cls(words, phrases, exclusions)

    @property
    def longest(self) -> str:
        return max([*self.words, *self.phrases], key=len, default="")


ORIGINAL_SQL = """
WITH candidates AS MATERIALIZED (
    SELECT t.info_hash, t.name FROM torrents t
    WHERE to_tsvector('simple', t.name) @@ plainto_tsquery('simple', :longest)
    LIMIT {cap}
)
SELECT s.id FROM candidates c JOIN torrent_search s ON s.info_hash = c.info_hash
WHERE NOT EXISTS (SELECT 1 FROM unnest(CAST(:words AS text[])) w
                  WHERE c.name NOT ILIKE '%' || w || '%')
  AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:phrases AS text[])) p
                  WHERE c.name NOT ILIKE '%' || p || '%')
  AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:exclusions AS text[])) x
                  WHERE c.name ILIKE '%' || x || '%')
{order} LIMIT {page}
"""


def original_sql(query_text: str, sort: Sort) -> tuple[str, dict[str, Any]] | None:
    terms = OriginalTerms.parse(query_text)
    if not terms.longest:
        return None
    sql = ORIGINAL_SQL.format(cap=ORIGINAL_CANDIDATES, order=_order_by(sort), page=PAGE)
    params = {
        "longest": terms.longest,
        "words": terms.words,
        "phrases": terms.phrases,
        "exclusions": terms.exclusions,
    }
    return sql, params


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class Run:
    method: str
    kind: str
    sort: Sort
    query: str
    ms: float
    exact: bool
    timeout: bool
    hits: int


@dataclass
class Subject:
    """One query with one sort, and its exact first page."""

    kind: str
    text: str
    query: Query
    sort: Sort
    expected: list[int]
    ilike: bool = False


_ANSWERS_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_answers (query TEXT, sort TEXT, ids TEXT, "
    "PRIMARY KEY (query, sort))"
)


async def stored_answers(engine: AsyncEngine) -> dict[tuple[str, str], list[int]]:
    """Exact first pages computed by an earlier run on this very load (a reload drops them)."""
    async with engine.begin() as conn:
        await conn.execute(text(_ANSWERS_DDL))
        rows = await conn.execute(text("SELECT query, sort, ids FROM bench_answers"))
        return {(r[0], r[1]): [int(i) for i in r[2].split()] for r in rows}


async def save_answers(engine: AsyncEngine, answers: dict[tuple[str, str], list[int]]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO bench_answers (query, sort, ids) VALUES (:q, :s, :ids)"),
            [{"q": q, "s": s, "ids": " ".join(map(str, ids))} for (q, s), ids in answers.items()],
        )


async def build_subjects(
    engine: AsyncEngine, facts: LoadFacts, args: argparse.Namespace
) -> list[Subject]:
    corpus = names.Corpus(rows=args.rows, seed=args.seed)
    query_set = queries.build(corpus, args.queries)
    answers = await stored_answers(engine)
    missing = [(q, sort) for q in query_set for sort in args.sorts if (q.text, sort) not in answers]
    log(f"{len(query_set)} queries; {len(missing)} exact answers to compute")
    if missing:
        log(f"reading {facts.rows:,} names back for the exact answers")
        reference = Reference(args.sorts)
        started = time.perf_counter()
        await reference.build(engine, facts.rows)
        log(f"reference index in {time.perf_counter() - started:,.0f} s; computing first pages")
        fresh: dict[tuple[str, str], list[int]] = {}
        candidates: dict[str, set[int] | None] = {}
        for bench_query, sort in missing:
            query = parse(bench_query.text)
            if bench_query.text not in candidates:
                candidates = {bench_query.text: reference.candidates(query)}
            fresh[(bench_query.text, sort)] = reference.first_page(
                query, sort, candidates[bench_query.text]
            )
        log(f"exact answers ready ({time.perf_counter() - started:,.0f} s in all)")
        del reference, candidates
        await save_answers(engine, fresh)
        answers.update(fresh)
    subjects = [
        Subject(q.kind, q.text, parse(q.text), sort, answers[(q.text, sort)])
        for q in query_set
        for sort in args.sorts
    ]
    sample = len(subjects) if args.ilike_sample <= 0 else min(args.ilike_sample, len(subjects))
    for subject in random.Random(args.seed).sample(subjects, sample):
        subject.ilike = True
    return subjects


async def measure(method: str, call: Callable[[], Any], subject: Subject) -> Run:
    started = time.perf_counter()
    timed_out = failed = False
    hits: list[int] = []
    try:
        hits = await call()
    except (Timeout, SearchTimeout):
        timed_out = True
    except Exception as exc:  # a method that breaks is reported, not allowed to stop the run
        log(f"{method} failed on {subject.text!r}: {type(exc).__name__}: {exc}")
        failed = True
    ms = (time.perf_counter() - started) * 1000
    exact = not (timed_out or failed) and hits == subject.expected
    return Run(
        method, subject.kind, subject.sort, subject.text, ms, exact, timed_out or failed, len(hits)
    )


def callers(
    engine: AsyncEngine, args: argparse.Namespace, subject: Subject
) -> dict[str, Callable[[], Any]]:
    search = bootstrap.search_engine(engine, timeout_seconds=args.timeout)
    postgres = db.is_postgres(engine)

    async def ours() -> list[int]:
        page = await search.search(SearchRequest(subject.query, sort=subject.sort, limit=PAGE))
        return [h.id for h in page.hits]

    async def ilike() -> list[int]:
        sql, params = ilike_sql(subject.query, subject.sort, postgres)
        return await _timed_rows(engine, sql, params, args.timeout)

    async def original() -> list[int]:
        built = original_sql(subject.text, subject.sort)
        if built is None:
            return []
        return await _timed_rows(engine, built[0], built[1], args.timeout)

    out: dict[str, Callable[[], Any]] = {"ours": ours}
    if postgres and "longest-word-first" in args.method_list:
        out["longest-word-first"] = original
    if subject.ilike and "ilike" in args.method_list:
        out["ilike"] = ilike
    return out


async def run(engine: AsyncEngine, facts: LoadFacts, args: argparse.Namespace) -> int:
    subjects = await build_subjects(engine, facts, args)
    # Warm-up: every query once through ours and the original (caches, plans); ILIKE only a
    # few times, since each run reads every name anyway.
    log("warm-up pass" if not args.no_warmup else "no warm-up pass")
    warm_ilike = 3
    for subject in [] if args.no_warmup else subjects:
        for method, call in callers(engine, args, subject).items():
            if method == "ilike":
                if warm_ilike == 0:
                    continue
                warm_ilike -= 1
            await measure(method, call, subject)
    log("timed pass")
    runs: list[Run] = []
    with progress_bar() as bar:
        task = bar.add_task("queries", total=len(subjects), rate="")
        for i, subject in enumerate(subjects):
            calls = list(callers(engine, args, subject).items())
            # Rotate who goes first, so no method always meets the cache another warmed.
            shift = i % len(calls)
            for method, call in calls[shift:] + calls[:shift]:
                runs.append(await measure(method, call, subject))
            bar.update(task, advance=1)
    await report(engine, facts, args, subjects, runs)
    return 0


# ---------------------------------------------------------------------------------------------
# Report.


def percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _row(label: str, runs: list[Run]) -> str:
    ms = [r.ms for r in runs]
    exact = sum(r.exact for r in runs)
    timeouts = sum(r.timeout for r in runs)
    return (
        f"| {label} | {len(runs)} | {percentile(ms, 0.5):.1f} | {percentile(ms, 0.95):.1f} "
        f"| {percentile(ms, 0.99):.1f} | {max(ms):.1f} | {timeouts} | {exact}/{len(runs)} |"
    )


HEADER = (
    "| {what} | runs | p50 ms | p95 ms | p99 ms | max ms | timeouts or errors | exact |\n"
    "|:--|--:|--:|--:|--:|--:|--:|--:|"
)


async def sizes(engine: AsyncEngine, url: str) -> list[tuple[str, int]]:
    if db.is_postgres(engine):
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC"
                )
            )
            out = [(r[0], int(r[1])) for r in rows]
            index = await conn.execute(
                text(
                    f"SELECT pg_relation_size('{ORIGINAL_INDEX}'), "
                    "pg_database_size(current_database())"
                )
            )
            original, total = index.one()
            return [
                *out,
                (f"{ORIGINAL_INDEX} (in torrents)", int(original)),
                ("database", int(total)),
            ]
    path = make_url(url).database or ""
    return [("database file", os.path.getsize(path))]  # noqa: ASYNC240 - once, at the end


async def report(
    engine: AsyncEngine,
    facts: LoadFacts,
    args: argparse.Namespace,
    subjects: list[Subject],
    runs: list[Run],
) -> None:
    version = await engine_version(engine)
    print()
    print(
        f"bittorrented search — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{version}"
    )
    distinct = len({s.text for s in subjects})
    print(
        f"{facts.rows:,} rows; {distinct} queries x sorts {', '.join(args.sorts)} = "
        f"{len(subjects)} runs per method; first page of {PAGE}; timeout {args.timeout:g} s; "
        f"ILIKE on {sum(s.ilike for s in subjects)} runs"
    )
    print()
    print("### Load")
    print()
    print(
        "| rows | load s | of it, deferred indexes s | rows/s | vacuum/analyze s "
        "| original's index s | batch | loaded |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|:--|")
    print(
        f"| {facts.rows:,} | {facts.load_seconds:,.0f} | {facts.index_seconds:,.0f} "
        f"| {facts.rows_per_second:,.0f} "
        f"| {facts.maintenance_seconds:,.0f} | {facts.original_index_seconds:,.0f} "
        f"| {facts.batch_size:,} | {facts.loaded_at} |"
    )
    print()
    print("| relation | size MB |")
    print("|:--|--:|")
    url = args.database_url or default_url(args.engine, args.rows)
    for name, size in await sizes(engine, url):
        print(f"| {name} | {size / 2**20:,.0f} |")
    methods = [m for m in METHODS if any(r.method == m for r in runs)]
    print()
    print("### By method")
    print()
    print(HEADER.format(what="method"))
    for method in methods:
        print(_row(method, [r for r in runs if r.method == method]))
    print()
    print("### By method and query class")
    print()
    print(HEADER.format(what="class / method"))
    for kind in dict.fromkeys(s.kind for s in subjects):
        for method in methods:
            chosen = [r for r in runs if r.method == method and r.kind == kind]
            if chosen:
                print(_row(f"{kind} / {method}", chosen))
    print()
    print("### By method and sort")
    print()
    print(HEADER.format(what="sort / method"))
    for sort in args.sorts:
        for method in methods:
            chosen = [r for r in runs if r.method == method and r.sort == sort]
            if chosen:
                print(_row(f"{sort} / {method}", chosen))
    print()
    print("### Ours against each baseline, on the same runs")
    print()
    print(
        "| baseline | runs | p50 ours / baseline | p95 ours / baseline "
        "| exact ours | exact baseline |"
    )
    print("|:--|--:|--:|--:|--:|--:|")
    ours = {(r.query, r.sort): r for r in runs if r.method == "ours"}
    for method in methods[1:]:
        theirs = [r for r in runs if r.method == method]
        mine = [ours[(r.query, r.sort)] for r in theirs]
        p50 = percentile([r.ms for r in mine], 0.5) / percentile([r.ms for r in theirs], 0.5)
        p95 = percentile([r.ms for r in mine], 0.95) / percentile([r.ms for r in theirs], 0.95)
        print(
            f"| {method} | {len(theirs)} | ×{p50:.3f} | ×{p95:.3f} "
            f"| {sum(r.exact for r in mine)}/{len(mine)} "
            f"| {sum(r.exact for r in theirs)}/{len(theirs)} |"
        )
    print()
    print("### Slowest runs of ours")
    print()
    print("| ms | class | sort | query | hits |")
    print("|--:|:--|:--|:--|--:|")
    for r in sorted((r for r in runs if r.method == "ours"), key=lambda r: -r.ms)[:12]:
        print(f"| {r.ms:.1f} | {r.kind} | {r.sort} | `{r.query}` | {r.hits} |")
    wrong = [r for r in runs if r.method == "ours" and not r.exact]
    print()
    print(f"ours: exact on {len(ours) - len(wrong)}/{len(ours)} runs")
    for r in wrong[:10]:
        print(
            f"  NOT EXACT: {r.kind} {r.sort} {r.query!r} "
            f"({'timeout' if r.timeout else 'wrong page'})"
        )


SERVER_SETTINGS = ("shared_buffers", "work_mem", "max_wal_size", "effective_cache_size", "jit")


async def engine_version(engine: AsyncEngine) -> str:
    """The engine, and on PostgreSQL the settings the figures depend on."""
    if db.is_sqlite(engine):
        return f"SQLite {sqlite3.sqlite_version}"
    async with engine.connect() as conn:
        shown = [
            f"{name}={(await conn.execute(text(f'SHOW {name}'))).scalar_one()}"
            for name in ("server_version", *SERVER_SETTINGS)
        ]
    return "PostgreSQL " + ", ".join(shown)


# ---------------------------------------------------------------------------------------------
# Command line.


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="default: a dedicated bench database")
    parser.add_argument("--reload", action="store_true", help="drop and load again")
    parser.add_argument("--queries", type=int, default=500, help="distinct queries (>= 20)")
    parser.add_argument("--sort", default="relevance,seeders", help="comma-separated sorts")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per statement")
    parser.add_argument("--ilike-sample", type=int, default=0, help="query runs for ILIKE (0: all)")
    parser.add_argument("--batch", type=int, default=bulk.DEFAULT_BATCH, help="rows per COPY")
    parser.add_argument("--seed", type=int, default=names.DEFAULT_SEED)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the warm-up pass (caches already warm)"
    )
    parser.add_argument("--load-only", action="store_true", help="load, then stop")
    args = parser.parse_args(argv)
    sorts = [s.strip() for s in args.sort.split(",") if s.strip()]
    if not sorts or any(s not in SORT_COLUMNS for s in sorts):
        parser.error(f"--sort takes a list of {sorted(SORT_COLUMNS)}")
    if args.rows < 1 or args.queries < 1:
        parser.error("--rows and --queries must be positive")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "ours" not in methods or any(m not in METHODS for m in methods):
        parser.error(f"--methods takes ours and any of {list(METHODS[1:])}")
    args.sorts = sorts
    args.method_list = methods
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    engine, facts = await prepare_database(args)
    try:
        if args.load_only:
            print(facts)
            return 0
        return await run(engine, facts, args)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
