"""The search query language, parsed into a small tree that every engine compiles.

    dune 2021            all words must match a token of the name
    spider*              a word ending in ``*`` matches a token it starts
    "the matrix"         consecutive tokens (a phrase); ``spider-man`` unquoted is one too
    "the matr"*          a phrase whose last word is a prefix
    -cam                 exclude names that match
    x264 | x265          either (binds tighter than the space: ``a b | c`` = a AND (b OR c))

Words are tokenised exactly as names are (keel.bittorrented.search.tokens), so ``Amélie`` finds
``amelie`` and ``S01E02`` finds ``s01e02``. An empty query matches everything (browsing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.bittorrented.errors import BadQuery
from keel.bittorrented.search.tokens import tokenize

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 16
MAX_ALTERNATIVES = 16
MAX_PHRASE_TOKENS = 16

# A quoted phrase (optionally excluded, closing quote optional, ``*`` after it for a prefix),
# a bar, or a run of anything else.
_LEXEME = re.compile(r'-?"[^"]*(?:"\*?)?|\||[^\s"|]+')


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive tokens; a single-token phrase is a plain word. ``prefix``: the last token
    only has to start a token of the name."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Clause:
    """One of several alternatives must match (or, when ``negated``, none may)."""

    alternatives: tuple[Phrase, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """Every clause must hold. No clauses: match everything."""

    clauses: tuple[Clause, ...] = ()

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negated)

    @property
    def negative(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.negated)


def parse(text: str) -> Query:
    """Parse a query; raises :class:`BadQuery` saying what is wrong (too long, too many parts,
    or a ``-`` inside an ``a | b`` group)."""
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"query is longer than {MAX_QUERY_CHARS} characters")
    groups: list[list[tuple[bool, Phrase | None]]] = []
    join_next = False
    for lexeme in _LEXEME.findall(text):
        if lexeme == "|":
            join_next = bool(groups)
            continue
        negated, phrase = _atom(lexeme)
        if join_next:
            groups[-1].append((negated, phrase))
        else:
            groups.append([(negated, phrase)])
        join_next = False
    clauses = [clause for group in groups if (clause := _clause(group)) is not None]
    if len(clauses) > MAX_CLAUSES:
        raise BadQuery(f"a query may have at most {MAX_CLAUSES} parts")
    return Query(tuple(clauses))


def _atom(lexeme: str) -> tuple[bool, Phrase | None]:
    negated = lexeme.startswith("-")
    body = lexeme[1:] if negated else lexeme
    if body.startswith('"'):
        prefix = body.endswith('"*')
        tokens = tokenize(body.rstrip("*").strip('"'))
    else:
        prefix = body.endswith("*")
        tokens = tokenize(body)
    if not tokens:
        return negated, None
    if len(tokens) > MAX_PHRASE_TOKENS:
        raise BadQuery(f"a phrase may have at most {MAX_PHRASE_TOKENS} words")
    return negated, Phrase(tuple(tokens), prefix)


def _clause(group: list[tuple[bool, Phrase | None]]) -> Clause | None:
    negated = group[0][0]
    if any(neg for neg, _ in group[1:]):
        raise BadQuery("'-' excludes a whole 'a | b' group: write -a | b, not a | -b")
    alternatives = tuple(dict.fromkeys(p for _, p in group if p is not None))
    if not alternatives:
        return None
    if len(alternatives) > MAX_ALTERNATIVES:
        raise BadQuery(f"an 'a | b' group may have at most {MAX_ALTERNATIVES} choices")
    return Clause(alternatives, negated)


def render(query: Query) -> str:
    """Query text that parses back to ``query`` (what "did you mean" shows)."""
    parts = []
    for clause in query.clauses:
        body = " | ".join(_phrase_text(p) for p in clause.alternatives)
        parts.append(("-" if clause.negated else "") + body)
    return " ".join(parts)


def _phrase_text(phrase: Phrase) -> str:
    star = "*" if phrase.prefix else ""
    if len(phrase.tokens) == 1:
        return phrase.tokens[0] + star
    return '"' + " ".join(phrase.tokens) + '"' + star


def matches(query: Query, tokens: list[str]) -> bool:
    """The reference semantics, in plain Python: does a name with ``tokens`` match?"""
    return all(
        any(_phrase_in(p, tokens) for p in clause.alternatives) != clause.negated
        for clause in query.clauses
    )


def _phrase_in(phrase: Phrase, tokens: list[str]) -> bool:
    *head, last = phrase.tokens
    n = len(phrase.tokens)
    for start in range(len(tokens) - n + 1):
        if all(tokens[start + i] == t for i, t in enumerate(head)):
            token = tokens[start + n - 1]
            if token == last or (phrase.prefix and token.startswith(last)):
                return True
    return False
