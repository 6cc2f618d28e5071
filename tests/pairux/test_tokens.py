"""Join codes, participant tokens and invite links."""

from __future__ import annotations

import pytest

from keel.pairux import tokens
from keel.pairux.errors import InvalidInvite

KEYS = tokens.Keys.derive(bytes(range(32)))
ROOM = "0123456789abcdef0123456789abcdef"


def test_codes_use_only_the_unambiguous_alphabet() -> None:
    codes = {tokens.new_code() for _ in range(2000)}
    assert len(codes) > 1990
    for code in codes:
        assert tokens.CODE.match(code)
        assert not set(code) & set("01IO")
    assert set("".join(codes)) == set(tokens.CODE_ALPHABET)


def test_codes_are_read_as_people_type_them() -> None:
    assert tokens.normalise_code(" abc-def ") == "ABCDEF"


def test_tokens_are_hashed_with_a_key_and_never_stored_plain() -> None:
    token = tokens.new_participant_token()
    assert tokens.well_formed(token, tokens.PARTICIPANT_PREFIX)
    assert not tokens.well_formed(token, tokens.ACCOUNT_PREFIX)
    digest = KEYS.hash_token(token)
    assert token not in digest
    assert len(digest) == 64
    assert tokens.Keys.derive(bytes(32)).hash_token(token) != digest
    assert repr(KEYS) == "Keys(…)"


def test_an_invite_opens_its_room_until_it_expires() -> None:
    invite = KEYS.invite(ROOM, 2000)
    assert ROOM + "." in invite
    assert "code" not in invite
    assert KEYS.open_invite(invite, now=1999) == ROOM
    with pytest.raises(InvalidInvite, match="expired"):
        KEYS.open_invite(invite, now=2000)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("2000", "9999"),  # a later expiry
        lambda t: "f" + t[1:],  # another room
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # another MAC
        lambda t: t + "x",
        lambda _t: "",
        lambda _t: "a.b.c",
    ],
)
def test_a_forged_invite_is_refused(forge: object) -> None:
    invite = KEYS.invite(ROOM, 2000)
    with pytest.raises(InvalidInvite):
        KEYS.open_invite(forge(invite), now=0)  # type: ignore[operator]
    other = tokens.Keys.derive(bytes(32))
    with pytest.raises(InvalidInvite):
        other.open_invite(invite, now=0)
