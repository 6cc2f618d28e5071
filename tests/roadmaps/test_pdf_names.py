"""The raw PDF name scanner tokenises as a reader does: names found (escaped or not), never
inside strings, comments or stream bodies; and hostile bytes cannot make it slow."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.roadmaps.syllabus.pdf_names import MAX_STRING_DEPTH, NameScanner, TooComplex

WANTED = frozenset({b"/JS", b"/JavaScript", b"/AA", b"/EmbeddedFile"})
scanner = NameScanner(WANTED)
NAMES = [b"/JS", b"/JavaScript", b"/AA", b"/EmbeddedFile", b"/EmbeddedFiles", b"/JSX", b"/A"]
NAMES += [b"/Type", b"/S", b"/"]


def _escape(name: bytes, which: list[bool]) -> bytes:
    """``name`` with the characters ``which`` selects written as ``#xx``."""
    out = b"/"
    for char, escaped in zip(name[1:], which + [False] * len(name), strict=False):
        out += b"#%02X" % char if escaped else bytes([char])
    return out


@st.composite
def _token(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A piece of PDF syntax and the wanted name a reader sees in it (None if none)."""
    name = draw(st.sampled_from(NAMES))
    spelled = _escape(name, draw(st.lists(st.booleans(), max_size=len(name))))
    context = draw(st.sampled_from(["bare", "string", "comment", "hex", "stream"]))
    if context == "bare":
        return spelled + draw(st.sampled_from([b" ", b"\n", b"[", b"<<", b"(x)", b"/"])), (
            name if name in WANTED else None
        )
    if context == "string":
        depth = draw(st.integers(min_value=0, max_value=6))
        escaped_paren = draw(st.sampled_from([b"", b"\\(", b"\\)", b"\\\\"]))
        body = b"(" * depth + escaped_paren + spelled + b")" * depth
        return b"(" + body + b") ", None
    if context == "comment":
        return b"% " + spelled + b" (\n", None
    if context == "hex":
        return b"<" + spelled[1:].hex().encode() + b"> ", None
    return b">>\nstream\n" + spelled + b" (\nendstream\n", None


@settings(max_examples=200, deadline=None)
@given(st.lists(_token(), max_size=12))
def test_the_scanner_sees_exactly_the_names_a_reader_sees(
    tokens: list[tuple[bytes, bytes | None]],
) -> None:
    data = b"".join(syntax for syntax, _name in tokens)
    expected = [name for _syntax, name in tokens if name is not None]
    assert list(scanner.in_file(data)) == expected


def test_an_escaped_name_is_decoded() -> None:
    assert list(scanner.in_syntax(b"<< /S /J#61vaScript /J#53 (x) >>")) == [
        b"/JavaScript",
        b"/JS",
    ]


def test_a_name_that_only_starts_like_a_wanted_one_is_not_it() -> None:
    assert list(scanner.in_syntax(b"/JSX /AAA /EmbeddedFiles /JavaScripts")) == []


def test_strings_nested_too_deep_are_refused() -> None:
    depth = MAX_STRING_DEPTH + 1
    with pytest.raises(TooComplex):
        list(scanner.in_syntax(b"(" * depth + b"x" + b")" * depth))


@pytest.mark.parametrize(
    "data",
    [
        b"/a" * 500_000,
        b"(a(b)c)" * 150_000,
        b"((((((x))))))" * 80_000,
        b"/#41" * 250_000,
        b"(" + b"\\" * 1_000_000 + b")",
        b"(" * 1_000_000,
        b"%" * 1_000_000,
        b">>stream\n" * 100_000,
        b">>stream\nendstream" * 60_000,
        b"/JSX" * 250_000,
    ],
    ids=lambda data: repr(data[:12]),
)
def test_a_megabyte_of_hostile_syntax_is_scanned_quickly(data: bytes) -> None:
    started = time.perf_counter()
    with contextlib.suppress(TooComplex):  # giving up quickly is fine too
        list(scanner.in_file(data))
    assert time.perf_counter() - started < 1.0
