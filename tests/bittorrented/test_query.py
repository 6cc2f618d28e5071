from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.bittorrented.errors import BadQuery
from keel.bittorrented.search import query
from keel.bittorrented.search.query import Clause, Phrase, Query, matches
from keel.bittorrented.search.tokens import tokenize
from tests.bittorrented.strategies import names, queries, render


def q(*clauses: Clause) -> Query:
    return Query(tuple(clauses))


def word(token: str, prefix: bool = False) -> Clause:
    return Clause((Phrase((token,), prefix),))


def test_tokenize_splits_on_every_non_alphanumeric_and_folds() -> None:
    assert tokenize("The.Matrix.1999.1080p.BluRay.x264-GRP") == [
        "the", "matrix", "1999", "1080p", "bluray", "x264", "grp",
    ]  # fmt: skip
    assert tokenize("Amélie [2001] (Ærø)") == ["amelie", "2001", "aero"]
    assert tokenize("...") == []


def test_words_are_anded_bars_or_and_minus_excludes() -> None:
    parsed = query.parse('dune 2021 x264 | x265 -cam "part two"')
    assert parsed == q(
        word("dune"),
        word("2021"),
        Clause((Phrase(("x264",)), Phrase(("x265",)))),
        word("cam").__class__((Phrase(("cam",)),), negated=True),
        Clause((Phrase(("part", "two")),)),
    )


def test_unquoted_punctuated_word_is_a_phrase_and_star_is_a_prefix() -> None:
    assert query.parse("spider-man") == q(Clause((Phrase(("spider", "man")),)))
    assert query.parse("matr*") == q(word("matr", prefix=True))
    assert query.parse('"matr*"') == q(word("matr"))


def test_empty_and_punctuation_only_queries_match_everything() -> None:
    assert query.parse("") == Query()
    assert query.parse('  | - ** "" ') == Query()
    assert matches(Query(), ["anything"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a | -b", "excludes a whole"),
        ("x" * 501, "longer than"),
        (" ".join(f"w{i}" for i in range(17)), "at most 16 parts"),
        ('"' + " ".join(f"w{i}" for i in range(17)) + '"', "at most 16 words"),
    ],
)
def test_bad_queries_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        query.parse(text)


def test_reference_semantics() -> None:
    tokens = tokenize("The.Matrix.Reloaded.2003.1080p")
    assert matches(query.parse("matrix 2003"), tokens)
    assert matches(query.parse('"the matrix"'), tokens)
    assert not matches(query.parse('"matrix the"'), tokens)
    assert matches(query.parse("reload*"), tokens)
    assert not matches(query.parse("reload"), tokens)
    assert not matches(query.parse("matrix -1080p"), tokens)
    assert matches(query.parse("720p | 1080p"), tokens)
    assert matches(query.parse('"matrix rel"*'), tokens)


@given(queries)
def test_rendered_queries_parse_back_to_themselves(parsed: Query) -> None:
    assert query.parse(render(parsed)) == parsed


@given(st.text(max_size=200))
def test_any_text_parses_or_is_a_bad_query(text: str) -> None:
    try:
        parsed = query.parse(text)
    except BadQuery:
        return
    assert all(c.alternatives for c in parsed.clauses)


@given(names())
def test_a_name_matches_its_own_tokens_as_a_phrase(name: str) -> None:
    tokens = tokenize(name)
    assert matches(Query((Clause((Phrase(tuple(tokens[:16])),)),)), tokens)
