"""The SSRF corpus of the roadmaps issue, end to end through the guarded client (the one the
syllabus fetch uses; tests/roadmaps/test_syllabus.py runs the same corpus through the fetch).

A loopback server stands ready on every case's port, and the socket layer under the guard
records every address it is handed: each case is refused before any connection is made, and
the server never hears of it. test_netguard.py covers the address classification and host
parsing these rest on; this file is the attacker's view: URLs, DNS, redirects, rebinding.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from keel.core import netguard
from tests.core.netfakes import (
    PUBLIC_IP,
    Reply,
    RoutedNetwork,
    dns,
    loopback_server,
    rebinding_dns,
)

# (case, URL with the loopback server's {port}, a word the refusal's reason contains)
LITERAL_CORPUS = [
    ("decimal IPv4", "http://2130706433:{port}/", "loopback 127.0.0.1"),
    ("octal IPv4", "http://0177.0.0.1:{port}/", "loopback 127.0.0.1"),
    ("hex IPv4, dotted", "http://0x7f.0.0.1:{port}/", "loopback 127.0.0.1"),
    ("hex IPv4, one number", "http://0x7f000001:{port}/", "loopback 127.0.0.1"),
    ("short IPv4", "http://127.1:{port}/", "loopback 127.0.0.1"),
    ("IPv6 loopback", "http://[::1]:{port}/", "loopback ::1"),
    ("IPv4-mapped, dotted", "http://[::ffff:127.0.0.1]:{port}/", "loopback 127.0.0.1"),
    ("IPv4-mapped, hex", "http://[::ffff:7f00:1]:{port}/", "loopback 127.0.0.1"),
    ("cloud metadata", "http://169.254.169.254:{port}/latest/meta-data/", "link-local"),
    ("unspecified", "http://0.0.0.0:{port}/", "unspecified 0.0.0.0"),
    ("CGNAT 100.64/10", "http://100.64.0.1:{port}/", "shared (CGNAT)"),
    ("CGNAT top", "http://100.127.255.254:{port}/", "shared (CGNAT)"),
    ("10/8", "http://10.0.0.1:{port}/", "private 10.0.0.1"),
    ("172.16/12", "http://172.16.0.1:{port}/", "private 172.16.0.1"),
    ("172.16/12 top", "http://172.31.255.255:{port}/", "private 172.31.255.255"),
    ("192.168/16", "http://192.168.0.1:{port}/", "private 192.168.0.1"),
    ("unique-local fc00::/7", "http://[fc00::1]:{port}/", "unique-local"),
    ("unique-local fd00::/8", "http://[fd12:3456::1]:{port}/", "unique-local"),
    ("link-local fe80::/10", "http://[fe80::1]:{port}/", "link-local"),
    ("IPv4-mapped metadata", "http://[::ffff:169.254.169.254]:{port}/", "link-local"),
]
# Names, with what the attacker's DNS answers for them.
NAME_CORPUS = [
    ("a DNS name resolving to loopback", "loopback.example", ["127.0.0.1"], "loopback"),
    ("a DNS name resolving to metadata", "meta.example", ["169.254.169.254"], "link-local"),
    ("a DNS name resolving to IPv6 loopback", "six.example", ["::1"], "loopback ::1"),
]


def corpus_urls(port: int) -> list[tuple[str, str, str]]:
    """(case, URL, reason) for every literal and name case, aimed at ``port``."""
    return [(case, url.format(port=port), reason) for case, url, reason in LITERAL_CORPUS] + [
        (case, f"http://{name}:{port}/", reason) for case, name, _answers, reason in NAME_CORPUS
    ]


def corpus_dns(asked: list[str]) -> netguard.Lookup:
    return dns({name: answers for _case, name, answers, _reason in NAME_CORPUS}, asked)


@pytest.fixture
def site() -> Iterator[tuple[int, list[str]]]:
    """The loopback server: its port and the paths it was asked for."""
    with loopback_server(lambda path: Reply(body=b"internal secret")) as server:
        yield server.port, server.paths


CASES = [case for case, _url, _reason in corpus_urls(0)]


def _httpx_parses(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


@pytest.mark.parametrize("case", CASES)
async def test_each_case_is_refused_before_any_connection(
    case: str, site: tuple[int, list[str]]
) -> None:
    port, paths = site
    [(url, reason)] = [(u, r) for c, u, r in corpus_urls(port) if c == case]
    network = RoutedNetwork({})
    asked: list[str] = []
    client = netguard.guarded_client(lookup=corpus_dns(asked), network=network)
    async with client:
        if _httpx_parses(url):
            with pytest.raises(netguard.BlockedDestination) as info:
                await client.get(url)
            assert reason in info.value.reason
        else:
            # httpx will not even build a request for it (0177.0.0.1); the policy's verdict
            # on the address it spells is what the syllabus fetch reports.
            with pytest.raises(httpx.InvalidURL):
                await client.get(url)
            with pytest.raises(netguard.BlockedDestination, match=reason):
                await netguard.vet_url(url)
    assert network.connects == []
    assert paths == []


async def test_the_corpus_is_live_an_unguarded_client_reaches_the_server(
    site: tuple[int, list[str]],
) -> None:
    # The control: the IPv4 spellings really do reach a loopback service when nothing guards
    # them (the C library reads them as 127.0.0.1; Linux reaches 0.0.0.0 as loopback).
    port, paths = site
    spellings = ["2130706433", "0x7f.0.0.1", "0x7f000001", "127.1", "0.0.0.0"]
    async with httpx.AsyncClient(trust_env=False) as client:
        for host in spellings:
            response = await client.get(f"http://{host}:{port}/{host}")
            assert response.text == "internal secret"
    assert paths == [f"/{host}" for host in spellings]


def _redirecting_site(target: str) -> Reply:
    return Reply(status=302, headers={"Location": target})


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://loopback.example:{port}/secret",
    ],
)
async def test_a_public_site_redirecting_to_a_private_address_is_refused(location: str) -> None:
    # The first hop is "public" (a public address the test network carries to the loopback
    # server); each hop is vetted again, so the redirect's target is refused.
    with loopback_server(lambda path: _redirecting_site(location.format(port=port))) as server:
        port = server.port
        network = RoutedNetwork({PUBLIC_IP: port})
        asked: list[str] = []
        lookup = dns({"site.example": [PUBLIC_IP], "loopback.example": ["127.0.0.1"]}, asked)
        client = netguard.guarded_client(lookup=lookup, network=network, follow_redirects=True)
        async with client:
            with pytest.raises(netguard.BlockedDestination):
                await client.get("http://site.example/start")
    assert network.connects == [(PUBLIC_IP, 80)]
    assert server.paths == ["/start"]  # the redirect's target was never asked for


async def test_dns_rebinding_between_check_and_connect_never_reaches_loopback() -> None:
    # The attacker's DNS answers a public address, then loopback. A check that resolved
    # separately from the connect would pass the first answer and connect with the second;
    # the guard resolves once per connection and connects to exactly what it vetted.
    with loopback_server(lambda path: Reply(body=b"public page")) as server:
        network = RoutedNetwork({PUBLIC_IP: server.port})
        asked: list[str] = []
        lookup = rebinding_dns("rebind.example", [[PUBLIC_IP], ["127.0.0.1"]], asked)
        async with netguard.guarded_client(lookup=lookup, network=network) as client:
            first = await client.get("http://rebind.example/")
            assert first.text == "public page"
            assert asked == ["rebind.example"]  # one lookup for the connection...
            assert network.connects == [(PUBLIC_IP, 80)]  # ...connected to what it vetted
            # The server closed the connection (HTTP/1.0): the next request resolves again,
            # gets loopback, and is refused before any connect.
            with pytest.raises(netguard.BlockedDestination, match=r"loopback 127\.0\.0\.1"):
                await client.get("http://rebind.example/")
    assert asked == ["rebind.example", "rebind.example"]
    assert network.connects == [(PUBLIC_IP, 80)]
    assert server.paths == ["/"]
