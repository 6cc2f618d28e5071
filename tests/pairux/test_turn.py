"""TURN REST credentials, checked against the definition (RFC 2104 HMAC over SHA-1, base64)."""

from __future__ import annotations

import base64
import hashlib

from keel.pairux import turn


def hmac_sha1_by_hand(key: bytes, message: bytes) -> bytes:
    """RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)) with SHA-1's 64-byte block."""
    block = 64
    if len(key) > block:
        key = hashlib.sha1(key, usedforsecurity=False).digest()
    key = key.ljust(block, b"\x00")
    inner = hashlib.sha1(bytes(b ^ 0x36 for b in key) + message, usedforsecurity=False).digest()
    return hashlib.sha1(bytes(b ^ 0x5C for b in key) + inner, usedforsecurity=False).digest()


def config(**overrides: object) -> turn.TurnConfig:
    values: dict[str, object] = {
        "host": "turn.example.org",
        "port": 3478,
        "tls_port": 5349,
        "tls": True,
        "secret": b"north",
        "ttl_seconds": 3600,
    }
    return turn.TurnConfig(**{**values, **overrides})  # type: ignore[arg-type]


def test_the_credential_is_base64_of_hmac_sha1_of_the_username() -> None:
    username = "1700003600:7f3c9a"
    expected = base64.b64encode(hmac_sha1_by_hand(b"north", username.encode())).decode()
    assert turn.credential(b"north", username) == expected
    # A fixed vector, so a change of algorithm cannot pass by changing both sides.
    assert expected == "Z4A7xjJ9LqSOlANFqGXpRn554Rg="


def test_the_hand_made_hmac_matches_rfc_2202() -> None:
    digest = hmac_sha1_by_hand(b"Jefe", b"what do ya want for nothing?")
    assert digest.hex() == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"  # RFC 2202, case 2


def test_a_long_secret_is_hashed_first_as_hmac_says() -> None:
    secret = b"s" * 100
    assert (
        turn.credential(secret, "1:x")
        == base64.b64encode(hmac_sha1_by_hand(secret, b"1:x")).decode()
    )


def test_the_username_carries_the_expiry_and_the_participant() -> None:
    servers = turn.ice_servers(config(), "abc", now=1_700_000_000)
    relay = servers[1]
    assert relay["username"] == "1700003600:abc"
    expiry = int(relay["username"].split(":")[0])
    assert expiry - 1_700_000_000 == 3600
    assert relay["credential"] == turn.credential(b"north", relay["username"])
    later = turn.ice_servers(config(), "abc", now=1_700_000_100)[1]
    assert later["username"] == "1700003700:abc"  # a fresh credential, a later expiry
    assert later["credential"] != relay["credential"]


def test_udp_tcp_and_tls_relays_and_stun_are_offered() -> None:
    servers = turn.ice_servers(config(), "abc", now=0)
    assert servers[0] == {"urls": ["stun:turn.example.org:3478"]}
    assert servers[1]["urls"] == [
        "turn:turn.example.org:3478?transport=udp",
        "turn:turn.example.org:3478?transport=tcp",
        "turns:turn.example.org:5349?transport=tcp",
    ]
    no_tls = turn.ice_servers(config(tls=False), "abc", now=0)[1]["urls"]
    assert all(url.startswith("turn:") for url in no_tls)
    v6 = turn.ice_servers(config(host="::1", tls=False), "abc", now=0)
    assert v6[0]["urls"] == ["stun:[::1]:3478"]


def test_no_turn_host_offers_nothing_and_the_secret_is_never_in_repr() -> None:
    assert turn.ice_servers(config(host=""), "abc", now=0) == []
    assert "north" not in repr(config())
