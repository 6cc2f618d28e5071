"""Email normalisation and display names: examples, and properties over any text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.identity.emails import (
    MAX_EMAIL_CHARS,
    clean_display_name,
    default_display_name,
    normalise_email,
)
from keel.core.identity.errors import InvalidDisplayName, InvalidEmail


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Ana@Example.ORG", "ana@example.org"),
        ("  ana@example.org\t", "ana@example.org"),
        ("a.b+tag@mail.example.co.uk", "a.b+tag@mail.example.co.uk"),
        ("Ａｎａ@ｅｘａｍｐｌｅ.ｏｒｇ", "ana@example.org"),  # full-width, NFKC
        ("josé@bücher.de", "josé@bücher.de"),
    ],
)
def test_emails_are_normalised(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ana",
        "ana@",
        "@example.org",
        "ana@example",
        "ana@localhost",
        "ana@10.0.0.1",
        "ana@@example.org",
        "a na@example.org",
        "ana@exa mple.org",
        "ana..b@example.org",
        ".ana@example.org",
        "ana.@example.org",
        "ana@-example.org",
        "ana@example-.org",
        "ana@ex_ample.org",
        "ana@exam\nple.org",
        "ana\x00@example.org",
        '"ana"@example.org',
        "<ana@example.org>",
        "a" * 65 + "@example.org",
        "ana@" + "a" * 250 + ".org",
    ],
)
def test_malformed_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(raw)


@given(st.text())
def test_normalising_is_idempotent_and_never_crashes(raw: str) -> None:
    try:
        email = normalise_email(raw)
    except InvalidEmail:
        return
    assert normalise_email(email) == email
    assert email.count("@") == 1
    assert len(email) <= MAX_EMAIL_CHARS
    assert not any(c.isspace() for c in email)


@given(st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9]{1,10}\.(org|com|io)", fullmatch=True))
def test_plain_ascii_addresses_are_kept_as_they_are(raw: str) -> None:
    try:
        assert normalise_email(raw) == raw
    except InvalidEmail:
        local = raw.partition("@")[0]
        assert ".." in local or local.startswith(".") or local.endswith(".")


def test_display_names_are_tidied_and_bounded() -> None:
    assert clean_display_name("  Ana   María \n") == "Ana María"
    assert default_display_name("ana.b@example.org") == "ana.b"
    for bad in ("", "   ", "x" * 81, "bell\x07", "rtl\u202eoverride"):
        with pytest.raises(InvalidDisplayName):
            clean_display_name(bad)


@given(st.text())
def test_a_clean_display_name_stays_clean(raw: str) -> None:
    try:
        name = clean_display_name(raw)
    except InvalidDisplayName:
        return
    assert clean_display_name(name) == name
    assert 1 <= len(name) <= 80
