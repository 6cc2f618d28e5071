"""magnet: hex and base32 name one hash, every bad link is refused with MalformedMagnet, and
build/parse round-trip."""

from __future__ import annotations

import base64
import contextlib

import libtorrent as lt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.bittorrented.errors import MalformedMagnet
from keel.bittorrented.torrent.magnet import MAX_MAGNET_CHARS, build_magnet, parse_magnet
from keel.bittorrented.torrent.values import Magnet

HASH = bytes.fromhex("c9e15763f722f23e98a29decdfae341b98d53056")
HEX = HASH.hex()
B32 = base64.b32encode(HASH).decode()


@pytest.mark.parametrize("btih", [HEX, HEX.upper(), B32, B32.lower()])
def test_hex_and_base32_in_any_case_name_the_same_hash(btih: str) -> None:
    assert parse_magnet(f"magnet:?xt=urn:btih:{btih}").info_hash == HASH


def test_reads_name_and_trackers_in_order_without_duplicates() -> None:
    magnet = parse_magnet(
        f"  MAGNET:?XT=URN:BTIH:{HEX}&dn=Big+Buck%20Bunny%20%281080p%29"
        "&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce"
        "&tr=https://t.example/announce?passkey=1"
        "&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce"
        "&tr.1=wss://tracker.webtorrent.example\n"
    )
    assert magnet == Magnet(
        info_hash=HASH,
        display_name="Big Buck Bunny (1080p)",
        trackers=(
            "udp://tracker.example:1337/announce",
            "https://t.example/announce?passkey=1",
            "wss://tracker.webtorrent.example",
        ),
    )


def test_trackers_with_other_schemes_and_unknown_parameters_are_dropped() -> None:
    magnet = parse_magnet(
        f"magnet:?xt=urn:btih:{HEX}&tr=javascript:alert(1)&tr=&tr=file:///etc/passwd"
        "&x.pe=1.2.3.4:5&ws=http://seed.example/&xl=10&so=0&kt=a+b"
    )
    assert magnet.trackers == ()
    assert magnet.display_name is None


def test_first_non_empty_name_wins() -> None:
    assert parse_magnet(f"magnet:?dn=&xt=urn:btih:{HEX}&dn=one&dn=two").display_name == "one"


def test_btih_is_picked_among_several_exact_topics() -> None:
    btmh = "1220" + "ab" * 32
    for uri in (
        f"magnet:?xt=urn:btmh:{btmh}&xt=urn:btih:{HEX}",
        f"magnet:?xt.1=urn:btih:{HEX}&xt.2=urn:btmh:{btmh}",
        f"magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{B32}&xt=urn:sha1:XYZ",
    ):
        assert parse_magnet(uri).info_hash == HASH


def test_agrees_with_libtorrent() -> None:
    uri = f"magnet:?xt=urn:btih:{B32}&dn=Some%20Name&tr=udp%3A%2F%2Ft.example%3A80"
    params = lt.parse_magnet_uri(uri)
    magnet = parse_magnet(uri)
    assert magnet.info_hash == params.info_hashes.v1.to_bytes()
    assert magnet.display_name == params.name
    assert list(magnet.trackers) == list(params.trackers)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("", "does not start with 'magnet:?'"),
        (f"http://example.com/?xt=urn:btih:{HEX}", "does not start"),
        (f"magnet:xt=urn:btih:{HEX}", "does not start"),
        (f"urn:btih:{HEX}", "does not start"),
        (HEX, "does not start"),
        ("magnet:?", "no 'xt=urn:btih:'"),
        ("magnet:?dn=name&tr=udp://t.example:1", "no 'xt=urn:btih:'"),
        ("magnet:?xt=urn:btmh:1220" + "ab" * 32, "no 'xt=urn:btih:'"),
        (f"magnet:?xt=urn:btih:{HEX[:-1]}", "neither 40 hex digits nor 32 base32"),
        (f"magnet:?xt=urn:btih:{HEX}0", "neither"),
        (f"magnet:?xt=urn:btih:{B32}A", "neither"),
        (f"magnet:?xt=urn:btih:{B32[:-1]}", "neither"),
        (f"magnet:?xt=urn:btih:{B32[:-1]}1", "neither"),  # 0, 1, 8, 9 are not base32
        (f"magnet:?xt=urn:btih:{B32[:-1]}=", "neither"),
        (f"magnet:?xt=urn:btih:{HEX[:-1]}g", "neither"),
        (f"magnet:?xt=urn:btih:{HEX[:20]}%20{HEX[20:-1]}", "neither"),
        ("magnet:?xt=urn:btih:", "neither"),
        (f"magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{'0' * 40}", "two different btih"),
        (f"magnet:?xt=urn:btih:{HEX}" + "&tr=x" * 600, "more than 512 parameters"),
        (f"magnet:?xt=urn:btih:{HEX}&dn=" + "a" * MAX_MAGNET_CHARS, "characters, over"),
    ],
)
def test_bad_links_are_refused_saying_why(uri: str, fragment: str) -> None:
    with pytest.raises(MalformedMagnet) as caught:
        parse_magnet(uri)
    assert caught.value.code == "malformed_magnet"
    assert fragment in caught.value.detail


def test_build_writes_lower_case_hex_and_escapes_everything() -> None:
    uri = build_magnet(HASH, "Ä & B=C+D", ["udp://t.example:80/announce"])
    assert uri == (
        f"magnet:?xt=urn:btih:{HEX}&dn=%C3%84%20%26%20B%3DC%2BD"
        "&tr=udp%3A%2F%2Ft.example%3A80%2Fannounce"
    )
    assert build_magnet(HASH) == f"magnet:?xt=urn:btih:{HEX}"
    with pytest.raises(ValueError, match="20 bytes"):
        build_magnet(b"\x00" * 19)


tracker_urls = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(["http://", "https://", "udp://", "ws://", "WSS://"]),
    st.text(max_size=30),
)


@given(
    st.binary(min_size=20, max_size=20),
    st.none() | st.text(min_size=1, max_size=60),
    st.lists(tracker_urls, max_size=5, unique=True),
)
def test_parse_inverts_build(info_hash: bytes, name: str | None, trackers: list[str]) -> None:
    magnet = parse_magnet(build_magnet(info_hash, name, trackers))
    assert magnet == Magnet(info_hash=info_hash, display_name=name, trackers=tuple(trackers))
    assert build_magnet(magnet.info_hash, magnet.display_name, magnet.trackers) == build_magnet(
        info_hash, name, trackers
    )


@given(st.text(max_size=200))
def test_random_text_raises_only_malformed_magnet(text: str) -> None:
    with contextlib.suppress(MalformedMagnet):
        parse_magnet(text)
    with contextlib.suppress(MalformedMagnet):
        parse_magnet("magnet:?" + text)


@given(
    st.lists(
        st.sampled_from(["xt", "xt.1", "dn", "tr", "tr.2", "XT", "x"]).flatmap(
            lambda key: st.tuples(
                st.just(key),
                st.sampled_from(["urn:btih:", "URN:BTIH:", "urn:btmh:", ""]),
                st.sampled_from([HEX, B32, HEX[:39], B32 + "=", "%", "%zz", "&", "=", ""])
                | st.text(max_size=10),
            )
        ),
        max_size=6,
    )
)
def test_structured_random_links_raise_only_malformed_magnet(
    fields: list[tuple[str, str, str]],
) -> None:
    uri = "magnet:?" + "&".join(f"{key}={prefix}{value}" for key, prefix, value in fields)
    with contextlib.suppress(MalformedMagnet):
        magnet = parse_magnet(uri)
        assert len(magnet.info_hash) == 20
