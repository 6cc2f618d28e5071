"""SSRF guard: address classification, resolution checks, and the guarded client.

No test reaches the internet: public-looking names go through a fake resolver and
a mock network backend; real sockets only ever touch 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core import netguard
from keel.core.errors import Forbidden
from keel.core.netguard import (
    BlockedDestination,
    GuardedNetworkBackend,
    UnresolvableHost,
    guarded_client,
    is_public_ip,
    non_public_reason,
    parse_host,
    resolve_public,
    vet_url,
)
from keel.core.netguard.client import _GuardedTransport

IP = ipaddress.ip_address

# --------------------------------------------------------------------------- is_public_ip

NON_PUBLIC = [
    # IPv4 special-purpose ranges
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.0.171",
    "192.0.2.10",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6
    "::",
    "::1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",  # IPv4-compatible is refused even for a public v4
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::ffff:0.0.0.0",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
    "100::1",  # discard-only
    "2001::1",  # Teredo
    "2001:2::1",  # benchmarking
    "2001:10::1",  # ORCHID
    "2001:db8::1",
    "3fff::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "febf::1",
    "fec0::1",  # site-local
    "ff02::1",
    "ff0e::1",
    "4000::1",  # unassigned, outside 2000::/3
    "5f00::1",  # SRv6 SIDs
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "192.167.255.255",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert is_public_ip(IP(address)) is False


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_ip(IP(address)) is True


# Reference built from the ipaddress module's own flags, plus the few blocks it
# does not flag on 3.11 but we deliberately refuse (documented in netguard).
_EXTRA_V4 = [ipaddress.IPv4Network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24")]
_EXTRA_V6 = [ipaddress.IPv6Network("3fff::/20")]


def _reference(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _reference(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return _reference(ip.sixtofour)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            return _reference(ipaddress.IPv4Address(ip.packed[-4:]))
        if ip.is_site_local or any(ip in n for n in _EXTRA_V6):
            return False
    elif any(ip in n for n in _EXTRA_V4):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _interesting_v6() -> st.SearchStrategy[ipaddress.IPv6Address]:
    # Uniform 128-bit integers almost never hit the special prefixes, so also
    # build addresses under each prefix with random low bits.
    prefixes = [
        0,  # ::/96 and friends
        0xFFFF << 32,  # ::ffff:0:0/96
        0x0064FF9B << 96,
        0x2002 << 112,
        0x2001 << 112,
        0x20010DB8 << 96,
        0x3FFF << 112,
        0xFC00 << 112,
        0xFE80 << 112,
        0xFEC0 << 112,
        0xFF00 << 112,
        0x2600 << 112,
    ]
    return st.builds(
        lambda p, low, bits: ipaddress.IPv6Address(p | (low & ((1 << bits) - 1))),
        st.sampled_from(prefixes),
        st.integers(0, 2**128 - 1),
        st.sampled_from([32, 48, 64, 96, 112]),
    )


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.ip_addresses(v=4),
        st.ip_addresses(v=6),
        _interesting_v6(),
        st.integers(0, 2**32 - 1).map(lambda n: ipaddress.IPv6Address((0xFFFF << 32) | n)),
        st.integers(0, 2**32 - 1).map(lambda n: ipaddress.IPv6Address((0x64FF9B << 96) | n)),
        st.integers(0, 2**32 - 1).map(lambda n: ipaddress.IPv6Address((0x2002 << 112) | n << 80)),
    )
)
def test_is_public_ip_matches_reference(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert is_public_ip(ip) is _reference(ip)


# --------------------------------------------------------------------------- resolve_public


async def test_resolve_public_refuses_literal_private_ip() -> None:
    with pytest.raises(BlockedDestination) as info:
        await resolve_public("169.254.169.254", 80)
    assert info.value.code == "destination_blocked"
    assert info.value.status == 403
    assert isinstance(info.value, Forbidden)
    assert "169.254.169.254" in info.value.detail


async def test_resolve_public_accepts_public_literals_without_dns() -> None:
    assert await resolve_public("8.8.8.8", 443) == ["8.8.8.8"]
    assert await resolve_public("[2606:4700:4700::1111]", 443) == ["2606:4700:4700::1111"]


def _fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out: list[Any] = []
        for addr in answers[host]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
        return out

    return fake


async def test_resolve_public_refuses_if_any_answer_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # asyncio's getaddrinfo looks socket.getaddrinfo up at call time.
    monkeypatch.setattr(
        socket, "getaddrinfo", _fake_getaddrinfo({"evil.test": ["8.8.8.8", "10.0.0.5"]})
    )
    with pytest.raises(BlockedDestination, match=r"evil\.test.*10\.0\.0\.5"):
        await resolve_public("evil.test", 80)


async def test_resolve_public_returns_all_public_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        _fake_getaddrinfo({"ok.test": ["8.8.8.8", "8.8.4.4", "8.8.8.8", "2001:4860::8888"]}),
    )
    assert await resolve_public("ok.test", 80) == ["8.8.8.8", "8.8.4.4", "2001:4860::8888"]


async def test_resolve_public_refuses_unresolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo({}))
    with pytest.raises(UnresolvableHost, match=r"nowhere\.invalid.*does not resolve") as info:
        await resolve_public("nowhere.invalid", 80)
    assert info.value.code == "destination_unresolvable"
    assert isinstance(info.value, BlockedDestination)


# --------------------------------------------------------------------------- loopback server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hits += 1  # type: ignore[attr-defined]
        body = b"hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _port(srv: ThreadingHTTPServer) -> int:
    return int(srv.server_address[1])


async def test_loopback_server_refused_by_default(server: ThreadingHTTPServer) -> None:
    async with guarded_client() as client:
        with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1"):
            await client.get(f"http://127.0.0.1:{_port(server)}/?token=secret")
    assert server.hits == 0  # type: ignore[attr-defined]


async def test_loopback_server_reached_with_allow_private(server: ThreadingHTTPServer) -> None:
    async with guarded_client(allow_private=True) as client:
        response = await client.get(f"http://127.0.0.1:{_port(server)}/")
    assert response.status_code == 200
    assert response.text == "hello"
    assert server.hits == 1  # type: ignore[attr-defined]


async def test_error_message_omits_query_string(server: ThreadingHTTPServer) -> None:
    async with guarded_client() as client:
        with pytest.raises(BlockedDestination) as info:
            await client.get(f"http://127.0.0.1:{_port(server)}/hook?token=s3cr3t")
    assert "s3cr3t" not in str(info.value)
    assert "s3cr3t" not in repr(info.value.extra)


async def test_localhost_refused_whatever_dns_says(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 6761: localhost is loopback even if a (hostile) resolver says otherwise.
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo({"localhost": ["8.8.8.8"]}))
    async with guarded_client() as client:
        with pytest.raises(BlockedDestination, match=r"'localhost'.*loopback"):
            await client.get(f"http://localhost:{_port(server)}/")
    assert server.hits == 0  # type: ignore[attr-defined]


async def test_localhost_refused_with_system_resolver(server: ThreadingHTTPServer) -> None:
    try:
        socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    except socket.gaierror:  # pragma: no cover - depends on the host
        pytest.skip("localhost does not resolve here")
    async with guarded_client() as client:
        with pytest.raises(BlockedDestination, match="localhost"):
            await client.get(f"http://localhost:{_port(server)}/")
    assert server.hits == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1:8080/",
        "https://192.168.1.1/",
        "http://[fe80::1]/",
        "http://[64:ff9b::7f00:1]/",
    ],
)
async def test_literal_internal_urls_refused(url: str) -> None:
    async with guarded_client() as client:
        with pytest.raises(BlockedDestination):
            await client.get(url)


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd"])
async def test_non_http_schemes_refused(url: str) -> None:
    for allow_private in (False, True):
        async with guarded_client(allow_private=allow_private) as client:
            with pytest.raises(BlockedDestination, match="scheme"):
                await client.get(url)


async def test_environment_proxy_does_not_bypass_guard(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If the env proxy were honoured, the request would reach this server as a proxy.
    proxy = f"http://127.0.0.1:{_port(server)}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with guarded_client() as client:
        assert client.trust_env is False
        with pytest.raises(BlockedDestination):
            await client.get("http://10.1.2.3/")
    assert server.hits == 0  # type: ignore[attr-defined]


def test_guarded_client_defaults_and_refused_kwargs() -> None:
    client = guarded_client(timeout=3.0, headers={"X-Test": "1"})
    assert client.follow_redirects is False
    assert client.timeout.connect == 3.0
    assert client.headers["X-Test"] == "1"
    for name in ("transport", "mounts", "proxy", "trust_env", "app", "cert"):
        refused: dict[str, Any] = {name: None}
        with pytest.raises(TypeError, match=name):
            guarded_client(**refused)


# --------------------------------------------------------------------------- backend


class _RecordingStream(httpcore.AsyncMockStream):
    def __init__(self, buffer: list[bytes], sni: list[str | None]) -> None:
        super().__init__(buffer)
        self._sni = sni

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
    ) -> httpcore.AsyncNetworkStream:
        self._sni.append(server_hostname)
        return self


class _RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the socket layer: records where it was asked to connect."""

    def __init__(self, response: list[bytes]) -> None:
        self.response = response
        self.connects: list[tuple[str, int]] = []
        self.sni: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return _RecordingStream(list(self.response), self.sni)

    async def sleep(self, seconds: float) -> None:
        pass


def _response(status: str, headers: str = "") -> list[bytes]:
    return [f"HTTP/1.1 {status}\r\n{headers}Content-Length: 2\r\n\r\nok".encode()]


def _fake_resolver(answers: dict[str, list[str]], calls: list[str]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host in answers:
            return answers[host]
        return await resolve_public(host, port)  # literals

    return resolve


def _client(backend: GuardedNetworkBackend, **kwargs: Any) -> httpx.AsyncClient:
    transport = _GuardedTransport(allow_private=False, backend=backend)
    return httpx.AsyncClient(transport=transport, trust_env=False, **kwargs)


async def test_connects_to_the_vetted_ip_and_keeps_hostname_for_tls() -> None:
    inner = _RecordingBackend(_response("200 OK"))
    calls: list[str] = []
    backend = GuardedNetworkBackend(
        inner, resolve=_fake_resolver({"hooks.example": ["93.184.216.34"]}, calls)
    )
    async with _client(backend) as client:
        response = await client.get("https://hooks.example/x")
    assert response.status_code == 200
    assert calls == ["hooks.example"]  # resolved exactly once
    assert inner.connects == [("93.184.216.34", 443)]  # connected to the checked IP
    assert inner.sni == ["hooks.example"]  # SNI / cert check still use the name


async def test_resolver_answer_is_rechecked_before_connecting() -> None:
    inner = _RecordingBackend(_response("200 OK"))
    backend = GuardedNetworkBackend(
        inner, resolve=_fake_resolver({"rebind.example": ["127.0.0.1"]}, [])
    )
    async with _client(backend) as client:
        with pytest.raises(BlockedDestination, match=r"rebind\.example"):
            await client.get("http://rebind.example/")
    assert inner.connects == []


async def test_each_redirect_hop_is_checked() -> None:
    # Every connection gets the same canned 302 pointing at an internal address.
    inner = _RecordingBackend(_response("302 Found", "Location: http://10.0.0.7/admin\r\n"))
    backend = GuardedNetworkBackend(
        inner, resolve=_fake_resolver({"public.example": ["93.184.216.34"]}, [])
    )
    async with _client(backend, follow_redirects=True) as client:
        with pytest.raises(BlockedDestination, match=r"10\.0\.0\.7"):
            await client.get("http://public.example/")
    assert inner.connects == [("93.184.216.34", 80)]


async def test_redirects_not_followed_by_default() -> None:
    inner = _RecordingBackend(_response("302 Found", "Location: http://10.0.0.7/\r\n"))
    backend = GuardedNetworkBackend(
        inner, resolve=_fake_resolver({"public.example": ["93.184.216.34"]}, [])
    )
    async with _client(backend) as client:
        response = await client.get("http://public.example/")
    assert response.status_code == 302


async def test_failing_resolver_surfaces_as_connect_error() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        raise UnresolvableHost(host, "resolver timed out", transient=True)

    backend = GuardedNetworkBackend(_RecordingBackend([]), resolve=resolve)
    async with _client(backend) as client:
        with pytest.raises(httpx.ConnectError, match=r"nowhere\.invalid"):
            await client.get("http://nowhere.invalid/")


async def test_name_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # NXDOMAIN is an answer, not an outage: refused like a private address, never retried.
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo({}))
    inner = _RecordingBackend([])
    async with _client(GuardedNetworkBackend(inner)) as client:
        with pytest.raises(UnresolvableHost, match=r"nowhere\.invalid") as info:
            await client.get("http://nowhere.invalid/")
    assert info.value.transient is False
    assert inner.connects == []


async def test_unix_sockets_refused() -> None:
    with pytest.raises(BlockedDestination, match="unix"):
        await GuardedNetworkBackend(_RecordingBackend([])).connect_unix_socket("/run/docker.sock")


# --------------------------------------------------------------------------- host parsing


def _ipv4_part(value: int, base: str) -> str:
    if base == "hex":
        return f"0x{value:x}"
    if base == "HEX":
        return f"0X{value:X}"
    if base == "oct":
        return f"0{value:o}"
    return str(value)


def _inet_aton_spelling(n: int, bases: list[str]) -> str:
    """``n`` in ``len(bases)`` parts (the last one filling the remaining bytes), each part
    written in its base."""
    packed = n.to_bytes(4, "big")
    parts = len(bases)
    values = [*packed[: parts - 1], int.from_bytes(packed[parts - 1 :], "big")]
    return ".".join(_ipv4_part(v, b) for v, b in zip(values, bases, strict=True))


_BASES = ["dec", "oct", "hex", "HEX"]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.sampled_from(_BASES), min_size=1, max_size=4),
)
def test_every_inet_aton_form_parses_to_its_integer(n: int, mixed: list[str]) -> None:
    expected = ipaddress.IPv4Address(n)
    # Every part count in every base, plus one random mix of bases.
    spellings = [
        _inet_aton_spelling(n, [base] * parts) for parts in (1, 2, 3, 4) for base in _BASES
    ]
    spellings.append(_inet_aton_spelling(n, mixed))
    for text in spellings:
        assert parse_host(text) == expected, text
        assert parse_host(text + ".") == expected, text  # one trailing dot, as browsers allow
        # The C library the HTTP client resolves with reads the same spelling the same way.
        assert socket.inet_aton(text) == expected.packed, text


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", IP("127.0.0.1")),
        ("0x7F000001", IP("127.0.0.1")),
        ("0177.0.0.1", IP("127.0.0.1")),
        ("127.1", IP("127.0.0.1")),
        ("127.0.1", IP("127.0.0.1")),
        ("0", IP("0.0.0.0")),
        ("0x", IP("0.0.0.0")),  # WHATWG: an empty hex number is 0
        ("127.0.0.1.", IP("127.0.0.1")),
        ("%31%32%37.0.0.1", IP("127.0.0.1")),
        ("127\uff0e0\uff0e0\uff0e1", IP("127.0.0.1")),  # fullwidth full stops
        ("\uff11\uff12\uff17.0.0.1", IP("127.0.0.1")),  # fullwidth digits
        ("[::ffff:127.0.0.1]", IP("::ffff:7f00:1")),
        ("::1", IP("::1")),
        ("Hooks.Example.", "hooks.example"),
        ("ex%41mple.com", "example.com"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("0x7f.example", "0x7f.example"),  # ends in a label, not a number: a name
        ("1.2.3.4x", "1.2.3.4x"),
    ],
)
def test_parse_host_reads_hosts_as_a_browser_does(
    host: str, expected: ipaddress.IPv4Address | ipaddress.IPv6Address | str
) -> None:
    assert parse_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.4.5",
        "0x100000000",
        "256.0.0.1",
        "1.16777216",
        "08.0.0.1",
        "0x1g.1",
        "1..1",
        "",
        ".",
        "%zz",
        "%ff.example",
        "a b.example",
        "[::1",
        "[1.2.3.4]",
        "1.2.3.\u0661",
        "1" * 5000,  # longer than int() parses in decimal
        "0x" + "0" * 100 + "1",
    ],
)
def test_parse_host_refuses_what_no_client_can_connect_to(host: str) -> None:
    with pytest.raises(BlockedDestination):
        parse_host(host)


def test_non_public_reason_names_the_range_and_the_address() -> None:
    assert non_public_reason(IP("127.0.0.1")) == "loopback 127.0.0.1"
    assert non_public_reason(IP("169.254.169.254")) == "link-local 169.254.169.254"
    assert non_public_reason(IP("::ffff:10.0.0.1")) == "private 10.0.0.1 (embedded in ::ffff:a00:1)"
    assert non_public_reason(IP("fe80::1")) == "link-local fe80::1"
    assert non_public_reason(IP("::")) == "unspecified ::"
    assert non_public_reason(IP("8.8.8.8")) is None
    assert non_public_reason(IP("64:ff9b:1::a00:1")) == "local-use NAT64 64:ff9b:1::a00:1"
    teredo = IP("2001:0:4136:e378:8000:63bf:f5ff:fffe")
    assert non_public_reason(teredo) == f"Teredo {teredo}"
    for embedding in ("2002:a00:1::1", "64:ff9b::a00:1"):
        assert non_public_reason(IP(embedding)) == f"private 10.0.0.1 (embedded in {embedding})"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1", True),  # as a browser (and the C library) reads it
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("dht.localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("::", False),
        ("example.com", False),
        ("1.2.3.4.5", False),  # no client can use it
        ("", False),
    ],
)
def test_is_loopback_reads_a_host_as_the_policy_does(host: str, loopback: bool) -> None:
    assert netguard.is_loopback(host) is loopback


async def test_resolve_looks_names_up_for_the_socket_type_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    fake = _fake_getaddrinfo({"lab.test": ["10.0.0.5"], "ok.test": ["8.8.8.8"]})

    def recording(host: str, port: int, family: int = 0, type: int = 0, *rest: Any) -> Any:
        seen.append(type)
        return fake(host, port)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    udp = socket.SOCK_DGRAM
    assert await netguard.resolve("ok.test", 6881, socket_type=udp) == ["8.8.8.8"]
    with pytest.raises(BlockedDestination, match=r"private 10\.0\.0\.5"):
        await netguard.resolve("lab.test", 6881, socket_type=udp)
    # A lab DHT: private answers pass, still parsed and looked up by the same code.
    assert await netguard.resolve("lab.test", 6881, allow_private=True, socket_type=udp) == [
        "10.0.0.5"
    ]
    assert await netguard.resolve("ok.test", 80) == ["8.8.8.8"]
    assert seen == [udp, udp, udp, socket.SOCK_STREAM]


# --------------------------------------------------------------------------- client equivalence

# Hosts the C library reads as a number: the unguarded client would connect to that address.
NUMERIC_CORPUS = [
    "http://2130706433/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://0/",
    "http://127\uff0e0\uff0e0\uff0e1/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://167772161/",
    "http://10.1/",
    "http://0x7f.1:8080/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/",
    "https://134744072/",
    "https://[2606:4700:4700::1111]/",
]
# Hosts the C library reads as a name (a DNS query), which netguard reads as the address a
# browser would: refused without asking DNS.
NAME_TO_LIBC_ADDRESS_TO_NETGUARD = [
    ("http://127.0.0.1./", "loopback 127.0.0.1"),
    ("http://%31%32%37.0.0.1/", "loopback 127.0.0.1"),
    ("http://0x7f.0.0.1./", "loopback 127.0.0.1"),
    ("http://localhost./", "loopback (localhost, RFC 6761)"),
    ("http://admin.localhost/", "loopback (localhost, RFC 6761)"),
]


class _HostRecorder(httpcore.AsyncNetworkBackend):
    """The socket layer of a plain client: records the host it is asked to connect to."""

    def __init__(self) -> None:
        self.hosts: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append((host, port))
        raise httpcore.ConnectError("recorded, not connected")

    async def sleep(self, seconds: float) -> None:
        pass


async def _host_the_plain_client_connects_to(url: str) -> tuple[str, int]:
    """What an unguarded httpx client hands its socket layer (AnyIOBackend, which passes it to
    getaddrinfo) for ``url``."""
    recorder = _HostRecorder()
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(network_backend=recorder)
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(url, content=b"{}")
    [host] = recorder.hosts
    return host


def _libc_numeric(host: str, port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    # getaddrinfo as anyio calls it, minus DNS: AI_NUMERICHOST only reads the host as a number.
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return {IP(info[4][0]) for info in infos}


@pytest.mark.parametrize("url", NUMERIC_CORPUS)
async def test_netguard_reads_the_host_as_the_client_will_connect_to_it(url: str) -> None:
    host, port = await _host_the_plain_client_connects_to(url)
    client_would_reach = _libc_numeric(host, port)
    # Registration: what vet_url says the destination is...
    vetted = {IP(a) for a in await vet_url(url, allow_private=True)}
    assert vetted == client_would_reach
    # ...and delivery: the guarded client connects exactly there.
    inner = _RecordingBackend(_response("200 OK"))
    transport = _GuardedTransport(
        allow_private=True, backend=GuardedNetworkBackend(inner, allow_private=True)
    )
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        await client.post(url, content=b"{}")
    assert {IP(address) for address, _ in inner.connects} == client_would_reach
    # And the verdict follows the address.
    [address] = client_would_reach
    reason = non_public_reason(address)
    if reason is None:
        assert await vet_url(url) == [str(address)]
    else:
        with pytest.raises(BlockedDestination) as info:
            await vet_url(url)
        assert info.value.reason == f"resolves to {reason}"


@pytest.mark.parametrize(("url", "reason"), NAME_TO_LIBC_ADDRESS_TO_NETGUARD)
async def test_hosts_the_client_would_look_up_are_refused_as_the_address_they_spell(
    url: str, reason: str
) -> None:
    host, port = await _host_the_plain_client_connects_to(url)
    with pytest.raises(socket.gaierror):
        _libc_numeric(host, port)  # a name to the client: it would ask DNS
    looked_up: list[str] = []

    async def dns(name: str, port: int) -> list[str]:
        looked_up.append(name)
        return ["93.184.216.34"]

    with pytest.raises(BlockedDestination) as info:
        await vet_url(url, lookup=dns)  # even though this DNS would answer a public address
    assert info.value.reason == f"resolves to {reason}"
    assert looked_up == []


async def test_names_are_looked_up_as_the_client_spells_them() -> None:
    url = "https://Hooks.Shop.Example./x"
    host, _port = await _host_the_plain_client_connects_to(url)
    looked_up: list[str] = []

    async def dns(name: str, port: int) -> list[str]:
        looked_up.append(name)
        return ["93.184.216.34"]

    assert await vet_url(url, lookup=dns) == ["93.184.216.34"]
    assert looked_up == [host]


async def test_a_host_the_client_refuses_is_refused_naming_the_address_it_spells() -> None:
    with pytest.raises(httpx.InvalidURL):
        httpx.URL("http://0177.0.0.1/")
    with pytest.raises(BlockedDestination, match=r"loopback 127\.0\.0\.1"):
        await vet_url("http://0177.0.0.1/")
    with pytest.raises(BlockedDestination, match="not a valid host for the HTTP client"):
        await vet_url("http://0010.0.0.010/", allow_private=True)


async def test_a_lookup_that_hangs_is_refused_after_the_timeout() -> None:
    async def hanging_dns(name: str, port: int) -> list[str]:
        await asyncio.sleep(60)
        return ["93.184.216.34"]

    with pytest.raises(UnresolvableHost, match=r"did not resolve within 0\.1 s") as info:
        await vet_url("https://slow.example/", lookup=hanging_dns, timeout=0.1)
    assert info.value.transient is True
