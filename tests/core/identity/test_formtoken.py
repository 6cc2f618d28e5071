"""Reading the CSRF token from form bodies: the urlencoded reader and the multipart
first-part reader against anything (hypothesis), and on every way a body may be split."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from keel.core.identity import formtoken

TOKEN = "k3Yq0cZ0dH3l2pZmR0y8VhM1Q9wq3t6GmC2sWn7uQ0E"
tokens = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


def multipart(fields: dict[str, str], *, files: bool = True) -> tuple[str, bytes]:
    request = httpx.Request(
        "POST",
        "http://x/",
        data=fields,
        # Without a file, a text part (no filename) still makes httpx send multipart.
        files={"pdf": ("a.pdf", b"%PDF-" + b"\x00" * 5000)} if files else {"note": (None, "n")},
    )
    return request.headers["content-type"], request.read()


def first_part(content_type: str, body: bytes, size: int) -> str | None:
    reader = formtoken.FirstPart(content_type)
    for start in range(0, max(len(body), 1), size):
        if reader.feed(body[start : start + size]):
            break
    return reader.token


@given(st.binary(max_size=2000))
def test_urlencoded_bodies_of_any_bytes_never_crash(body: bytes) -> None:
    formtoken.from_urlencoded(body)


@given(tokens, st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=5))
def test_the_urlencoded_token_is_found_wherever_it_is(token: str, others: dict[str, str]) -> None:
    others.pop("csrf_token", None)
    body = httpx.Request("POST", "http://x/", data={**others, "csrf_token": token}).read()
    assert formtoken.from_urlencoded(body) == token


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=512))
def test_multipart_bodies_of_any_bytes_never_crash(body: bytes, size: int) -> None:
    first_part("multipart/form-data; boundary=xyz", body, size)
    first_part("multipart/form-data", body, size)


@given(st.integers(min_value=1, max_value=400), st.booleans())
def test_the_multipart_token_is_read_however_the_body_is_split(size: int, files: bool) -> None:
    content_type, body = multipart({"csrf_token": TOKEN, "title": "x"}, files=files)
    assert first_part(content_type, body, size) == TOKEN


def test_a_token_that_is_not_the_first_field_is_not_read() -> None:
    content_type, body = multipart({"title": "x", "csrf_token": TOKEN})
    assert first_part(content_type, body, 64) is None


def test_the_reader_stops_within_the_first_part() -> None:
    content_type, body = multipart({"csrf_token": TOKEN})
    reader = formtoken.FirstPart(content_type)
    assert reader.feed(body[:400])  # the token's part ends in these bytes; the file is unread
    assert reader.token == TOKEN


def test_an_oversized_first_part_is_not_a_token() -> None:
    content_type, body = multipart({"csrf_token": "x" * 50_000}, files=False)
    assert first_part(content_type, body, 1024) is None
