"""Session and reset tokens: shapes, and the reset token parser and verifier against any
input (hypothesis): strings never crash it, and only a genuine, unexpired token for the
user's current password hash verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from keel.core.identity import tokens
from keel.core.identity.tokens import ResetTokens, parse_reset_token

SECRET = bytes(range(32))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
USER = "0123456789abcdef0123456789abcdef"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
resets = ResetTokens(SECRET, prefix="acme")

user_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
hashes = st.text(min_size=1, max_size=120).filter(lambda h: "\x00" not in h)


def verifies(token: str, password_hash: str = HASH, now: datetime = NOW) -> bool:
    claim = parse_reset_token(token)
    return claim is not None and resets.verify(claim, password_hash, now=now)


def test_session_tokens_are_256_bits_and_only_their_hash_is_kept() -> None:
    token = tokens.new_session_token()
    assert tokens.well_formed_session_token(token)
    assert len(tokens.session_token_hash(token)) == 64
    assert tokens.session_token_hash(token) != token
    assert not tokens.well_formed_session_token(token + "\n")


def test_a_genuine_token_verifies_until_it_expires() -> None:
    token = resets.issue(USER, HASH, now=NOW)
    assert verifies(token)
    assert verifies(token, now=NOW + timedelta(seconds=resets.ttl_seconds - 1))
    assert not verifies(token, now=NOW + timedelta(seconds=resets.ttl_seconds))


def test_a_token_dies_with_the_password_hash_it_was_issued_for() -> None:
    token = resets.issue(USER, HASH, now=NOW)
    assert not verifies(token, password_hash=HASH + "x")


def test_tokens_are_bound_to_the_product_and_its_secret() -> None:
    token = resets.issue(USER, HASH, now=NOW)
    claim = parse_reset_token(token)
    assert claim is not None
    assert not ResetTokens(SECRET, prefix="other").verify(claim, HASH, now=NOW)
    assert not ResetTokens(bytes(32), prefix="acme").verify(claim, HASH, now=NOW)


@given(st.text(max_size=300))
def test_arbitrary_strings_never_crash_and_never_verify(text: str) -> None:
    assert not verifies(text)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_as_latin_1_never_verify(data: bytes) -> None:
    assert not verifies(data.decode("latin-1"))


@given(user_ids, hashes, st.integers(min_value=0, max_value=10**6))
def test_genuine_tokens_verify_for_their_user_and_hash_only(
    user_id: str, password_hash: str, offset: int
) -> None:
    now = NOW + timedelta(seconds=offset)
    token = resets.issue(user_id, password_hash, now=now)
    assert verifies(token, password_hash, now)
    claim = parse_reset_token(token)
    assert claim is not None
    assert claim.user_id == user_id
    assert not verifies(token, password_hash + "!", now)


@given(st.data())
def test_changing_any_character_of_a_token_breaks_it(data: st.DataObject) -> None:
    token = resets.issue(USER, HASH, now=NOW)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii"))
    assume(replacement != token[position])
    forged = token[:position] + replacement + token[position + 1 :]
    assert not verifies(forged)


@given(user_ids, st.integers(min_value=1, max_value=10**11))
def test_another_user_or_expiry_in_a_genuine_mac_never_verifies(
    other_user: str, expires_at: int
) -> None:
    genuine = resets.issue(USER, HASH, now=NOW)
    _user, _expires, mac = genuine.split(".")
    assume(other_user != USER or str(expires_at) != _expires)
    assert not verifies(f"{other_user}.{expires_at}.{mac}")
