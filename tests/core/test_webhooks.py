"""Webhook signing/verification (wire format, rotation, failures, replay) and delivery."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core.errors import Unauthorized
from keel.core.netguard import UnresolvableHost, guarded_client
from keel.core.webhooks import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    DeliveryResult,
    InMemoryReplayStore,
    MalformedSignature,
    ReplayedSignature,
    SignatureError,
    SignatureMismatch,
    TimestampOutsideTolerance,
    deliver,
    next_retry_delay,
    sign,
    verify,
)

BODY = b'{"id":"evt_1","type":"payment.confirmed"}'
T = 1_700_000_000
OLD, NEW = "whsec_old", "whsec_new"


def _hmac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- sign


def test_sign_wire_format() -> None:
    assert sign(BODY, [NEW], T) == f"t={T},v1={_hmac(NEW, T, BODY)}"


def test_sign_rotation_puts_newest_last() -> None:
    header = sign(BODY, [OLD, NEW], T)
    assert header == f"t={T},v1={_hmac(OLD, T, BODY)},v1={_hmac(NEW, T, BODY)}"
    # What the SDK does: take the last v1.
    assert header.rsplit("v1=", 1)[1] == _hmac(NEW, T, BODY)


@pytest.mark.parametrize("secrets", [[], [""], ["ok", ""]])
def test_sign_requires_secrets(secrets: list[str]) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(BODY, secrets, T)


@pytest.mark.parametrize("timestamp", [-1, 10**15])
def test_sign_rejects_out_of_range_timestamp(timestamp: int) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        sign(BODY, [NEW], timestamp)


def test_sign_rejects_bare_string_secret() -> None:
    with pytest.raises(TypeError):
        sign(BODY, "whsec", T)


# --------------------------------------------------------------------------- verify


def test_round_trip() -> None:
    assert verify(sign(BODY, [NEW], T), BODY, [NEW], now=T) == T


@pytest.mark.parametrize("verifier_secrets", [[OLD], [NEW], [OLD, NEW], [NEW, OLD], ["x", NEW]])
def test_rotation_verifies_with_either_secret(verifier_secrets: list[str]) -> None:
    header = sign(BODY, [OLD, NEW], T)
    assert verify(header, BODY, verifier_secrets, now=T) == T


def test_old_sender_new_verifier_during_rotation() -> None:
    # Sender still on the old secret only; receiver already knows both.
    assert verify(sign(BODY, [OLD], T), BODY, [OLD, NEW], now=T) == T


def test_tampered_body_rejected() -> None:
    header = sign(BODY, [NEW], T)
    with pytest.raises(SignatureMismatch) as info:
        verify(header, BODY.replace(b"evt_1", b"evt_2"), [NEW], now=T)
    assert isinstance(info.value, SignatureError)
    assert isinstance(info.value, Unauthorized)
    assert info.value.status == 401


def test_wrong_secret_rejected() -> None:
    with pytest.raises(SignatureMismatch):
        verify(sign(BODY, [OLD], T), BODY, [NEW], now=T)


def test_tampered_timestamp_rejected() -> None:
    header = sign(BODY, [NEW], T).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(SignatureMismatch):
        verify(header, BODY, [NEW], now=T)


@pytest.mark.parametrize("skew", [-301, 301, -10_000, 10_000])
def test_timestamp_outside_tolerance_either_direction(skew: int) -> None:
    header = sign(BODY, [NEW], T)
    with pytest.raises(TimestampOutsideTolerance):
        verify(header, BODY, [NEW], now=T + skew)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamp_at_tolerance_edge_accepted(skew: int) -> None:
    assert verify(sign(BODY, [NEW], T), BODY, [NEW], now=T + skew) == T


def test_custom_tolerance() -> None:
    header = sign(BODY, [NEW], T)
    with pytest.raises(TimestampOutsideTolerance):
        verify(header, BODY, [NEW], now=T + 61, tolerance=60)


def test_whitespace_and_unknown_schemes_tolerated() -> None:
    sig = _hmac(NEW, T, BODY)
    header = f" t = {T} , v0=deadbeef,  v1={sig.upper()} ,v2=future ,"
    assert verify(header, BODY, [NEW], now=T) == T


@pytest.mark.parametrize(
    "header",
    [
        "",
        "   ",
        "garbage",
        f"v1={'0' * 64}",  # missing t
        f"t={T},t={T},v1={'0' * 64}",  # duplicate t
        f"t={T}",  # no v1
        f"t={T},v0={'0' * 64}",  # only unknown schemes
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t=١٢٣,v1={'0' * 64}",  # non-ASCII digits
        f"t={T},v1=xyz",
        f"t={T},v1={'0' * 63}",
        f"t={T},=x,v1={'0' * 64}",
        f"t={T}," + ",".join([f"v1={'0' * 64}"] * 17),  # too many signatures
    ],
)
def test_malformed_headers(header: str) -> None:
    with pytest.raises(MalformedSignature):
        verify(header, BODY, [NEW], now=T)


def test_verify_requires_secrets() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(sign(BODY, [NEW], T), BODY, [], now=T)


def test_error_codes_are_distinct() -> None:
    codes = {
        cls.code
        for cls in (
            SignatureError,
            MalformedSignature,
            TimestampOutsideTolerance,
            SignatureMismatch,
            ReplayedSignature,
        )
    }
    assert len(codes) == 5


# --------------------------------------------------------------------------- replay


def test_replay_detected() -> None:
    store = InMemoryReplayStore(clock=lambda: T)
    header = sign(BODY, [OLD, NEW], T)
    assert verify(header, BODY, [OLD, NEW], now=T, replay=store) == T
    with pytest.raises(ReplayedSignature):
        verify(header, BODY, [OLD, NEW], now=T + 1, replay=store)


def test_replay_detected_despite_header_rewriting() -> None:
    store = InMemoryReplayStore(clock=lambda: T)
    old_sig, new_sig = _hmac(OLD, T, BODY), _hmac(NEW, T, BODY)
    verify(f"t={T},v1={old_sig},v1={new_sig}", BODY, [OLD, NEW], now=T, replay=store)
    for variant in (
        f"t={T},v1={new_sig}",
        f"t={T},v1={old_sig}",
        f" t={T} , v1={new_sig.upper()}",
        f"v1={new_sig},t={T},v0=abc",
    ):
        with pytest.raises(ReplayedSignature):
            verify(variant, BODY, [OLD, NEW], now=T, replay=store)


def test_distinct_messages_are_not_replays() -> None:
    store = InMemoryReplayStore(clock=lambda: T)
    verify(sign(BODY, [NEW], T), BODY, [NEW], now=T, replay=store)
    verify(sign(BODY, [NEW], T + 1), BODY, [NEW], now=T, replay=store)
    verify(sign(b"{}", [NEW], T), b"{}", [NEW], now=T, replay=store)
    assert len(store) == 3


def test_rejected_signature_is_not_recorded() -> None:
    store = InMemoryReplayStore(clock=lambda: T)
    with pytest.raises(SignatureMismatch):
        verify(sign(BODY, [OLD], T), BODY, [NEW], now=T, replay=store)
    assert len(store) == 0


def test_replay_store_expiry_pruning() -> None:
    now = [100.0]
    store = InMemoryReplayStore(clock=lambda: now[0])
    assert store.seen("a", 150) is False
    assert store.seen("b", 300) is False
    assert store.seen("a", 150) is True
    now[0] = 151
    assert store.seen("c", 400) is False
    assert len(store) == 2  # "a" pruned
    assert store.seen("a", 450) is False  # expired entries are forgotten
    assert store.seen("b", 300) is True


def test_replay_store_bounded() -> None:
    store = InMemoryReplayStore(clock=lambda: 0, max_entries=3)
    for i, key in enumerate("abcd"):
        assert store.seen(key, 100 + i) is False
    assert len(store) == 3
    assert store.seen("d", 103) is True
    assert store.seen("a", 100) is False  # the soonest-expiring key was evicted


# --------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(max_size=512),
    secrets=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3),
    timestamp=st.integers(0, 2**40),
)
def test_sign_verify_round_trip_property(body: bytes, secrets: list[str], timestamp: int) -> None:
    header = sign(body, secrets, timestamp)
    assert verify(header, body, secrets, now=timestamp) == timestamp
    assert verify(header, body, secrets[-1:], now=timestamp) == timestamp


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=512),
    secrets=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3),
    timestamp=st.integers(0, 2**40),
    data=st.data(),
)
def test_any_single_byte_change_fails_property(
    body: bytes, secrets: list[str], timestamp: int, data: st.DataObject
) -> None:
    header = sign(body, secrets, timestamp)
    index = data.draw(st.integers(0, len(body) - 1))
    new_byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([new_byte]) + body[index + 1 :]
    with pytest.raises(SignatureMismatch):
        verify(header, tampered, secrets, now=timestamp)


# --------------------------------------------------------------------------- retry schedule


def test_retry_schedule() -> None:
    assert RETRY_SCHEDULE == (60, 300, 900, 3600, 10800, 21600, 43200)
    assert MAX_ATTEMPTS == 8
    assert [next_retry_delay(n) for n in range(1, 8)] == list(RETRY_SCHEDULE)
    assert next_retry_delay(1) == 60
    assert next_retry_delay(7) == 43200
    assert next_retry_delay(8) is None
    assert next_retry_delay(100) is None
    with pytest.raises(ValueError, match="at least 1"):
        next_retry_delay(0)


# --------------------------------------------------------------------------- delivery


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.received.append((self.path, self.headers, body))  # type: ignore[attr-defined]
        if self.path == "/slow":
            time.sleep(1.0)
        status = 500 if self.path == "/fail" else 204 if self.path == "/empty" else 200
        payload = b"x" * 5000 if self.path == "/big" else b"\xffreceived \xe2\x9c\x93"
        if self.path == "/empty":
            payload = b""
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # keep test output clean when a client hangs up


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def base(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    async with guarded_client(allow_private=True) as c:
        yield c


async def test_deliver_2xx(client: Any, base: str, server: _Server) -> None:
    header = sign(BODY, [NEW], T)
    result = await deliver(client, f"{base}/hook", BODY, {"X-Signature": header})
    assert isinstance(result, DeliveryResult)
    assert result.ok is True
    assert result.status_code == 200
    assert result.error is None
    assert result.response_excerpt == "\ufffdreceived ✓"
    assert 0 <= result.latency_seconds < 5
    _, headers, body = server.received[0]  # type: ignore[attr-defined]
    assert body == BODY
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Keel-Webhook/1.0"
    # The receiver can verify what it got.
    assert verify(headers["X-Signature"], body, [NEW], now=T) == T


async def test_deliver_keeps_caller_headers(client: Any, base: str, server: _Server) -> None:
    result = await deliver(
        client, f"{base}/empty", BODY, {"content-type": "application/cbor", "user-agent": "me"}
    )
    assert result.ok is True
    assert result.status_code == 204
    assert result.response_excerpt == ""
    _, headers, _ = server.received[0]  # type: ignore[attr-defined]
    assert headers["Content-Type"] == "application/cbor"
    assert headers["User-Agent"] == "me"


async def test_deliver_500_is_not_ok(client: Any, base: str) -> None:
    result = await deliver(client, f"{base}/fail", BODY, {})
    assert result.ok is False
    assert result.status_code == 500
    assert result.error == "HTTP 500"
    assert result.refused is False
    assert "received" in result.response_excerpt


async def test_deliver_excerpt_is_first_kib(client: Any, base: str) -> None:
    result = await deliver(client, f"{base}/big", BODY, {})
    assert result.ok is True
    assert result.response_excerpt == "x" * 1024


async def test_deliver_timeout(client: Any, base: str) -> None:
    started = time.perf_counter()
    result = await deliver(client, f"{base}/slow", BODY, {}, timeout=0.2)
    assert time.perf_counter() - started < 0.9
    assert result.ok is False
    assert result.status_code is None
    assert result.error is not None
    assert "timeout" in result.error


async def test_deliver_connection_refused(client: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Closed: nothing listens there any more.
    result = await deliver(client, f"http://127.0.0.1:{port}/hook", BODY, {}, timeout=2)
    assert result.ok is False
    assert result.status_code is None
    assert result.error is not None
    assert "ConnectError" in result.error
    assert result.refused is False


async def test_deliver_blocked_destination_is_reported(base: str, server: _Server) -> None:
    async with guarded_client() as guarded:
        result = await deliver(guarded, f"{base}/hook?token=s3cr3t", BODY, {})
    assert result.ok is False
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("blocked:")
    assert "loopback 127.0.0.1" in result.error
    assert result.refused is True
    assert "s3cr3t" not in result.error
    assert server.received == []  # type: ignore[attr-defined]


async def test_deliver_name_that_does_not_exist_is_refused_not_failed() -> None:
    async def no_such_name(host: str, port: int) -> list[str]:
        raise UnresolvableHost(host, "does not resolve (NXDOMAIN)")

    async with guarded_client(lookup=no_such_name) as guarded:
        result = await deliver(guarded, "https://gone.example/hook", BODY, {})
    assert result.ok is False
    assert result.refused is True
    assert result.error is not None
    assert "gone.example" in result.error


async def test_deliver_failing_resolver_is_a_failure_not_a_refusal() -> None:
    async def resolver_down(host: str, port: int) -> list[str]:
        raise UnresolvableHost(host, "resolver timed out", transient=True)

    async with guarded_client(lookup=resolver_down) as guarded:
        result = await deliver(guarded, "https://shop.example/hook", BODY, {})
    assert result.ok is False
    assert result.refused is False
    assert result.error is not None
    assert "ConnectError" in result.error


async def test_deliver_bad_url_is_reported(client: Any) -> None:
    result = await deliver(client, "ftp://example.com/", BODY, {})
    assert result.ok is False
    assert result.error is not None
    assert "scheme" in result.error
