"""bencode: canonical round trips, every malformed class refused with its offset, fuzzed input
never escaping as anything but MalformedTorrent."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.bittorrented.errors import MalformedTorrent
from keel.bittorrented.torrent import bencode

values = st.recursive(
    st.integers(min_value=-(10**30), max_value=10**30) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, inserted, deleted, or cut off."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
        at = draw(st.integers(min_value=0, max_value=max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            out[at:at] = draw(
                st.binary(min_size=1, max_size=4) | st.sampled_from([b"e", b"i", b"d"])
            )
        elif op == "delete" and out:
            del out[at]
        elif op == "truncate":
            del out[at:]
    return bytes(out)


@given(values)
def test_decode_inverts_encode(value: bencode.Value) -> None:
    assert bencode.decode(bencode.encode(value)) == value


@given(values)
def test_encode_inverts_decode_on_canonical_bytes(value: bencode.Value) -> None:
    data = bencode.encode(value)
    assert bencode.encode(bencode.decode(data)) == data


def test_decodes_the_bep3_examples() -> None:
    assert bencode.decode(b"4:spam") == b"spam"
    assert bencode.decode(b"0:") == b""
    assert bencode.decode(b"i3e") == 3
    assert bencode.decode(b"i-3e") == -3
    assert bencode.decode(b"i0e") == 0
    assert bencode.decode(b"l4:spam4:eggse") == [b"spam", b"eggs"]
    assert bencode.decode(b"d3:cow3:moo4:spam4:eggse") == {b"cow": b"moo", b"spam": b"eggs"}
    assert bencode.decode(b"d4:spaml1:a1:bee") == {b"spam": [b"a", b"b"]}


def test_encoder_sorts_keys_by_raw_bytes() -> None:
    assert bencode.encode({b"b": 1, b"a": [b"x", {}], b"B": b""}) == b"d1:B0:1:al1:xdee1:bi1ee"


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        (b"i03e", 0, "leading zero"),
        (b"i-0e", 0, "-0"),
        (b"i-03e", 0, "leading zero"),
        (b"ie", 0, "invalid integer"),
        (b"i-e", 0, "invalid integer"),
        (b"i1.5e", 0, "invalid integer"),
        (b"i 1e", 0, "invalid integer"),
        (b"i1_0e", 0, "invalid integer"),
        (b"i+1e", 0, "invalid integer"),
        (b"i12", 0, "not terminated"),
        (b"i" + b"1" * 40 + b"e", 0, "not terminated"),
        (b"i" + b"9" * 5000 + b"e", 0, "not terminated"),
        (b"03:abc", 0, "leading zero"),
        (b"5:abc", 0, "runs past the end"),
        (b"l5:abe", 1, "runs past the end"),
        (b"3abc", 0, "not terminated by ':'"),
        (b"9" * 5000 + b":", 0, "not terminated by ':'"),
        (b"li1e", 0, "list not terminated"),
        (b"d1:a", 4, "unexpected end"),
        (b"d1:ai1e", 0, "dictionary not terminated"),
        (b"d1:bi1e1:ai2ee", 7, "out of sorted order"),
        (b"d1:ai1e1:ai2ee", 7, "duplicate"),
        (b"i1ex", 3, "trailing data"),
        (b"i1ei2e", 3, "trailing data"),
        (b"4:spam\n", 6, "trailing data"),
        (b"l" * 65 + b"e" * 65, 64, "nested deeper than 64"),
        (b"di1ei2ee", 1, "key is not a byte string"),
        (b"dlei1ee", 1, "key is not a byte string"),
        (b"d1:alei1ei1ee", 6, "key is not a byte string"),
        (b"", 0, "empty"),
        (b"x", 0, "unexpected byte"),
    ],
)
def test_refuses_malformed_input_with_its_offset(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(MalformedTorrent) as caught:
        bencode.decode(data)
    assert caught.value.offset == offset
    assert caught.value.code == "malformed_torrent"
    assert f"at byte {offset}" in caught.value.detail
    assert fragment in caught.value.detail


def test_lenient_mode_accepts_unsorted_keys_but_not_duplicates() -> None:
    assert bencode.decode(b"d1:bi1e1:ai2ee", strict=False) == {b"b": 1, b"a": 2}
    with pytest.raises(MalformedTorrent, match="duplicate"):
        bencode.decode(b"d1:bi1e1:ai2e1:bi3ee", strict=False)


def test_lenient_mode_still_refuses_non_canonical_numbers() -> None:
    for data in (b"i01e", b"i-0e", b"01:a"):
        with pytest.raises(MalformedTorrent):
            bencode.decode(data, strict=False)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert bencode.decode(b"l" * 64 + b"e" * 64) is not None
    assert bencode.decode(b"l" * 3 + b"e" * 3, max_depth=3) == [[[]]]
    with pytest.raises(MalformedTorrent, match="nested deeper than 3"):
        bencode.decode(b"l" * 4 + b"e" * 4, max_depth=3)
    with pytest.raises(ValueError, match="max_depth"):
        bencode.decode(b"i1e", max_depth=10_000)


def test_size_and_token_limits_refuse_oversized_input() -> None:
    with pytest.raises(MalformedTorrent, match="over the limit of 10"):
        bencode.decode(b"11:hello world", max_bytes=10)
    assert bencode.decode(b"li1ei2ee", max_tokens=3) == [1, 2]
    with pytest.raises(MalformedTorrent, match="more than 3 values") as caught:
        bencode.decode(b"li1ei2ei3ee", max_tokens=3)
    assert caught.value.offset == 7
    # Dictionary keys are values too: a dict of n entries spends 2n + 1 tokens.
    with pytest.raises(MalformedTorrent, match="more than 4 values"):
        bencode.decode(b"d1:ai1e1:bi2ee", max_tokens=4)


def test_many_empty_lists_hit_the_token_limit_not_memory() -> None:
    data = b"l" + b"le" * 2_000_000 + b"e"
    with pytest.raises(MalformedTorrent, match="more than 1000000 values"):
        bencode.decode(data)


def test_document_exposes_the_raw_bytes_of_each_top_level_value() -> None:
    # The info dict's keys are out of order: its raw bytes, not a re-encoding, are its identity.
    data = b"d8:announce3:url4:infod4:name1:x6:lengthi1ee5:extrali1eee"
    document = bencode.decode_document(data, strict=False)
    assert document.raw(b"info") == b"d4:name1:x6:lengthi1ee"
    assert document.raw(b"info") != bencode.encode(document.value[b"info"])
    assert document.raw(b"announce") == b"3:url"
    assert document.raw(b"extra") == b"li1ee"
    assert document.raw(b"missing") is None
    assert document.value[b"info"] == {b"name": b"x", b"length": 1}


def test_document_must_be_a_dictionary() -> None:
    for data in (b"li1ee", b"i1e", b""):
        with pytest.raises(MalformedTorrent) as caught:
            bencode.decode_document(data)
        assert caught.value.offset == 0
    with pytest.raises(MalformedTorrent, match="trailing data"):
        bencode.decode_document(b"de" + b"de")


def test_bytes_like_input_is_accepted_and_text_is_not() -> None:
    assert bencode.decode(bytearray(b"i7e")) == 7
    assert bencode.decode(memoryview(b"1:a")) == b"a"
    with pytest.raises(TypeError):
        bencode.decode("i7e")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["text", 1.5, True, {"key": 1}, {1: 2}, None])
def test_encoder_refuses_values_bencode_cannot_express(value: object) -> None:
    with pytest.raises(TypeError):
        bencode.encode(value)  # type: ignore[arg-type]


def test_encoder_refuses_integers_the_decoder_would_refuse() -> None:
    assert bencode.decode(bencode.encode(10**31)) == 10**31
    with pytest.raises(ValueError, match="32 digits"):
        bencode.encode(10**32)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_malformed_torrent(data: bytes) -> None:
    for strict in (True, False):
        with contextlib.suppress(MalformedTorrent):
            bencode.decode(data, strict=strict)
        with contextlib.suppress(MalformedTorrent):
            bencode.decode_document(data, strict=strict)


@given(st.data(), values)
def test_mutated_encodings_raise_only_malformed_torrent(
    data: st.DataObject, value: bencode.Value
) -> None:
    damaged = data.draw(mutated(bencode.encode(value)))
    for strict in (True, False):
        with contextlib.suppress(MalformedTorrent):
            decoded = bencode.decode(damaged, strict=strict)
            if strict:
                # Whatever strict mode accepts is canonical, so it re-encodes to the same bytes.
                assert bencode.encode(decoded) == damaged
