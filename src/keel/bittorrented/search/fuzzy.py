"""The fuzzy fallback: when a query matches nothing, respell its unknown words.

Each query word of three or more letters that is no token of any name is replaced by the
nearest vocabulary term: candidates come from a trigram index (pg_trgm's GIN on PostgreSQL, an
FTS5 trigram table on SQLite), and the closest by edit distance wins (at most one typo in a
short word, two in a long one), ties going to the most trigrams shared (pg_trgm's measure).
Trigram similarity alone is poor at typos in short words: ``matirx`` shares only 3 of 11
trigrams with ``matrix``. The respelled query then runs exactly like any other.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.bittorrented.search.query import Clause, Phrase, Query

MIN_CHARS = 3
CANDIDATE_SIMILARITY = 0.1
CANDIDATES = 200


def trigrams(word: str) -> set[str]:
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb)


async def respell(conn: AsyncConnection, query: Query) -> Query | None:
    """The query with unknown words replaced by their nearest known term, or None when no
    word changed."""
    changed = False
    clauses = []
    for clause in query.clauses:
        alternatives = []
        for phrase in clause.alternatives:
            tokens = []
            for token in phrase.tokens:
                better = await _nearest(conn, token) if not clause.negated else None
                changed |= better is not None
                tokens.append(better or token)
            alternatives.append(Phrase(tuple(tokens), phrase.prefix))
        clauses.append(Clause(tuple(dict.fromkeys(alternatives)), clause.negated))
    return Query(tuple(clauses)) if changed else None


async def _nearest(conn: AsyncConnection, token: str) -> str | None:
    if len(token) < MIN_CHARS or token.isdigit():
        return None
    known = await conn.execute(text("SELECT 1 FROM search_terms WHERE term = :t"), {"t": token})
    if known.first() is not None:
        return None
    candidates = await _candidates(conn, token)
    limit = max_edits(token)
    scored = [
        (d, -similarity(token, term), term)
        for term in candidates
        if (d := edit_distance(token, term)) <= limit
    ]
    return min(scored)[2] if scored else None


async def _candidates(conn: AsyncConnection, token: str) -> list[str]:
    """Terms sharing trigrams with ``token``, from the trigram index."""
    if conn.dialect.name == "postgresql":
        # A low threshold only widens the candidate set; edit distance decides.
        await conn.execute(text(f"SET LOCAL pg_trgm.similarity_threshold = {CANDIDATE_SIMILARITY}"))
        rows = await conn.execute(
            text(
                "SELECT term FROM search_terms WHERE term % :t "
                "ORDER BY similarity(term, :t) DESC LIMIT :n"
            ),
            {"t": token, "n": CANDIDATES},
        )
        return [r.term for r in rows]
    grams = sorted({g for g in trigrams(token) if " " not in g})
    if not grams:
        return []
    rows = await conn.execute(
        text(
            "SELECT term FROM search_terms_trgm WHERE search_terms_trgm MATCH :m "
            "ORDER BY rank LIMIT :n"
        ),
        {"m": " OR ".join(f'"{g}"' for g in grams), "n": CANDIDATES},
    )
    return [r.term for r in rows]


def max_edits(token: str) -> int:
    """Typos tolerated: one in a short word, two from eight letters on."""
    return 1 if len(token) < 8 else 2


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
    adjacent letters each cost one (``matirx`` is one edit from ``matrix``)."""
    if abs(len(a) - len(b)) > 2:
        return 3
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
