"""Hypothesis strategies shared by the query and search tests: small vocabularies on purpose,
so that random names and random queries actually meet."""

from __future__ import annotations

from hypothesis import strategies as st

from keel.bittorrented.search.query import Clause, Phrase, Query, render

VOCABULARY = ("the", "matrix", "2024", "1080p", "x264", "s01e02", "a", "ab", "abc", "amelie", "b")
SEPARATORS = (".", " ", "-", "_", "[", "]", " - ", "(", ")")
# Surface forms that tokenise to vocabulary words, to exercise folding and case.
SPELLINGS = {"amelie": ("Amélie", "AMELIE", "amelie"), "the": ("The", "THE", "the")}

words = st.sampled_from(VOCABULARY)


@st.composite
def names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(words, min_size=1, max_size=7))
    out = []
    for i, word in enumerate(parts):
        if i:
            out.append(draw(st.sampled_from(SEPARATORS)))
        out.append(draw(st.sampled_from(SPELLINGS.get(word, (word, word.upper())))))
    return "".join(out)


@st.composite
def phrases(draw: st.DrawFn) -> Phrase:
    tokens = tuple(draw(st.lists(words, min_size=1, max_size=3)))
    return Phrase(tokens, prefix=draw(st.booleans()))


@st.composite
def clauses(draw: st.DrawFn) -> Clause:
    alternatives = tuple(dict.fromkeys(draw(st.lists(phrases(), min_size=1, max_size=3))))
    return Clause(alternatives, negated=draw(st.booleans()))


queries = st.lists(clauses(), max_size=3).map(lambda cs: Query(tuple(cs)))

__all__ = ["names", "queries", "render"]
