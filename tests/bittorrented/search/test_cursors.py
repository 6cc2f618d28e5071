"""Page cursors: only ones this server signed are read back, and only with in-range values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.bittorrented.errors import BadCursor
from keel.bittorrented.search.base import Order, Sort
from keel.bittorrented.search.cursors import ID_RANGE, KEY_RANGES, Cursors

KEY = bytes(range(32))
CURSORS = Cursors(KEY)
SORTS: tuple[Sort, ...] = get_args(Sort)
ORDERS: tuple[Order, ...] = get_args(Order)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(payload: Any, key: bytes = KEY) -> str:
    """A cursor carrying ``payload``, signed as the server signs (to forge with a leaked key)."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    tag = hmac.new(key, b"keel.bittorrented.cursor\x00" + raw, hashlib.sha256).digest()[:16]
    return f"{b64(raw)}.{b64(tag)}"


@st.composite
def search_keys(draw: st.DrawFn) -> tuple[Sort, Order, tuple[int, int]]:
    sort = draw(st.sampled_from(SORTS))
    low, high = KEY_RANGES[sort]
    after = (draw(st.integers(low, high)), draw(st.integers(*ID_RANGE)))
    return sort, draw(st.sampled_from(ORDERS)), after


@given(search_keys())
def test_issued_search_cursors_read_back_exactly(key: tuple[Sort, Order, tuple[int, int]]) -> None:
    sort, order, after = key
    cursor = CURSORS.search(sort, order, after)
    assert len(cursor) <= 200  # the API's max_length for the parameter
    assert CURSORS.search_after(cursor, sort, order) == after


@given(st.integers(*ID_RANGE))
def test_issued_file_cursors_read_back_exactly(after: int) -> None:
    assert CURSORS.files_after(CURSORS.files(after)) == after


def test_our_signed_format_is_what_the_forgery_helper_builds() -> None:
    # Keeps the tests below honest: their forged cursors differ from ours only where meant.
    assert signed(["seeders", "desc", 5, 7]) == CURSORS.search("seeders", "desc", (5, 7))


@given(search_keys(), st.binary(min_size=32, max_size=32))
def test_a_cursor_signed_under_another_key_is_refused(
    key: tuple[Sort, Order, tuple[int, int]], other: bytes
) -> None:
    sort, order, after = key
    if other == KEY:
        return
    with pytest.raises(BadCursor):
        Cursors(other).search_after(CURSORS.search(sort, order, after), sort, order)
    with pytest.raises(BadCursor):
        CURSORS.search_after(Cursors(other).search(sort, order, after), sort, order)


@given(st.text(max_size=200))
def test_any_text_is_refused_or_was_issued(text: str) -> None:
    try:
        after = CURSORS.search_after(text, "seeders", "desc")
    except BadCursor:
        return
    assert CURSORS.search("seeders", "desc", after) == text


@given(search_keys(), st.data())
def test_a_tampered_cursor_is_refused(
    key: tuple[Sort, Order, tuple[int, int]], data: st.DataObject
) -> None:
    sort, order, after = key
    cursor = CURSORS.search(sort, order, after)
    at = data.draw(st.integers(0, len(cursor) - 1))
    replacement = data.draw(st.sampled_from("AQgw-_.x0"))
    tampered = cursor[:at] + replacement + cursor[at + 1 :]
    if tampered == cursor:
        return
    try:
        read = CURSORS.search_after(tampered, sort, order)
    except BadCursor:
        return
    # Base64's last character can carry unused bits: the same bytes, so the same cursor.
    assert read == after


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(["seeders", "desc", 10**30, 1], id="seeders-10e30"),
        pytest.param(["seeders", "desc", 2**31, 1], id="seeders-past-int32"),
        pytest.param(["seeders", "desc", -1, 1], id="seeders-negative"),
        pytest.param(["size", "desc", 2**63, 1], id="size-past-int64"),
        pytest.param(["date", "desc", -(2**63) - 1, 1], id="date-below-int64"),
        pytest.param(["seeders", "desc", 5, 0], id="id-zero"),
        pytest.param(["seeders", "desc", 5, 2**63], id="id-past-int64"),
        pytest.param(["seeders", "desc", 5.0, 1], id="float"),
        pytest.param(["seeders", "desc", True, 1], id="bool"),
        pytest.param(["seeders", "desc", "5", 1], id="string"),
        pytest.param(["seeders", "desc", None, 1], id="null"),
        pytest.param(["seeders", "desc", 5], id="too-short"),
        pytest.param(["seeders", "desc", 5, 1, 1], id="too-long"),
        pytest.param({"sort": "seeders"}, id="object"),
        pytest.param(["size", "desc", 5, 1], id="other-sort"),
        pytest.param(["seeders", "asc", 5, 1], id="other-order"),
    ],
)
def test_signed_but_impossible_values_are_refused(payload: Any) -> None:
    with pytest.raises(BadCursor):
        CURSORS.search_after(signed(payload), "seeders", "desc")


@pytest.mark.parametrize(
    "cursor",
    [
        "99999999999999999999",
        "",
        ".",
        "!!!.!!!",
        "é.é",
        b64(json.dumps(["seeders", "desc", 5, 1]).encode()),  # the old, unsigned format
        signed(["seeders", "desc", 5, 1]).split(".")[0] + ".",
        signed(["seeders", "desc", 5, 1]) + "A",
        signed(["seeders", "desc", 5, 1]).replace(".", ".."),
    ],
)
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        CURSORS.search_after(cursor, "seeders", "desc")
    with pytest.raises(BadCursor):
        CURSORS.files_after(cursor)


def test_a_search_cursor_is_not_a_file_cursor() -> None:
    with pytest.raises(BadCursor):
        CURSORS.files_after(CURSORS.search("seeders", "desc", (5, 1)))
    with pytest.raises(BadCursor):
        CURSORS.search_after(CURSORS.files(5), "seeders", "desc")
