"""The JSON-RPC client's failover rules, on scripted providers (httpx.MockTransport): what moves
a call to the next provider, what does not, and that credentials never show."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY

from keel.coinpay.chains.rpc import MalformedResponse, RpcClient, breaker_name, provider_label
from keel.coinpay.errors import ChainUnavailable, RpcCallRejected
from keel.core.resilience import CircuitState

A = "http://alice:s3cret-pass@10.0.0.1:8332"
B = "https://rpc.example.org/v3/KEY-IN-PATH?apikey=KEY-IN-QUERY"
SECRETS = ("alice", "s3cret-pass", "KEY-IN-PATH", "KEY-IN-QUERY")

Handler = Callable[[httpx.Request], httpx.Response]


def reply(
    request: httpx.Request, result: Any = None, *, error: Any = None, status: int = 200
) -> httpx.Response:
    body = json.loads(request.content)
    payload: dict[str, Any] = {"jsonrpc": "2.0", "id": body["id"]}
    if error is not None:
        payload["error"] = error
    else:
        payload["result"] = result
    return httpx.Response(status, content=json.dumps(payload).encode())


def client(
    chain: str, handlers: dict[str, Handler], *, urls: tuple[str, ...] = (A, B), **kw: Any
) -> RpcClient:
    """An RpcClient whose providers answer through ``handlers`` keyed by host."""
    seen: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return handlers[request.url.host](request)

    rpc = RpcClient(
        chain,
        urls,
        client=httpx.AsyncClient(transport=httpx.MockTransport(route)),
        round_pause_seconds=0,
        **kw,
    )
    rpc.seen = seen  # type: ignore[attr-defined]
    return rpc


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def ok(result: Any) -> Handler:
    return lambda request: reply(request, result)


def state(chain: str, url: str) -> float | None:
    return REGISTRY.get_sample_value(
        "keel_circuit_state", {"name": breaker_name(chain, provider_label(url))}
    )


def test_provider_label_drops_credentials_path_and_query() -> None:
    assert provider_label(A) == "http://10.0.0.1:8332"
    assert provider_label(B) == "https://rpc.example.org:443"
    assert provider_label("http://[::1]:8545") == "http://[::1]:8545"


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("connection refused", refuse),
        ("HTTP 502 from a proxy", lambda r: httpx.Response(502, text="<html>bad gateway</html>")),
        ("HTTP 503 with an empty body", lambda r: httpx.Response(503)),
        ("HTTP 401 (wrong credentials)", lambda r: httpx.Response(401)),
        ("HTTP 429", lambda r: httpx.Response(429, json={"error": "slow down"})),
        ("not JSON", lambda r: httpx.Response(200, text="hello")),
        ("internal error", lambda r: reply(r, error={"code": -32603, "message": "boom"})),
        (
            "server error range",
            lambda r: reply(r, error={"code": -32000, "message": "header not found"}),
        ),
        ("limit exceeded", lambda r: reply(r, error={"code": -32005, "message": "limit"})),
        (
            "a reply to another id",
            lambda r: httpx.Response(200, json={"jsonrpc": "2.0", "id": 999, "result": 1}),
        ),
        (
            "neither result nor error",
            lambda r: httpx.Response(
                200, json={"jsonrpc": "2.0", "id": json.loads(r.content)["id"]}
            ),
        ),
    ],
)
async def test_a_failing_provider_hands_the_call_to_the_next(name: str, first: Handler) -> None:
    async with client("T1", {"10.0.0.1": first, "rpc.example.org": ok(42)}) as rpc:
        assert await rpc.call("getblockcount") == 42
        assert rpc.seen == ["10.0.0.1", "rpc.example.org"]  # type: ignore[attr-defined]


async def test_a_timeout_hands_the_call_to_the_next() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with client("T2", {"10.0.0.1": slow, "rpc.example.org": ok("0x10")}) as rpc:
        assert await rpc.call("eth_blockNumber", timeout_seconds=0.5) == "0x10"


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (500, -8, "Block height out of range"),  # Bitcoin Core: its own errors as HTTP 500
        (404, -32601, "Method not found"),  # Bitcoin Core: unknown method as HTTP 404
        (200, -32602, "invalid params"),
        (200, 3, "execution reverted"),
    ],
)
async def test_a_call_s_own_error_is_raised_without_trying_another_provider(
    status: int, code: int, message: str
) -> None:
    def rejects(request: httpx.Request) -> httpx.Response:
        return reply(request, error={"code": code, "message": message}, status=status)

    async with client("T3", {"10.0.0.1": rejects, "rpc.example.org": ok(1)}) as rpc:
        with pytest.raises(RpcCallRejected) as caught:
            await rpc.call("getblockhash", [10**6])
        assert rpc.seen == ["10.0.0.1"]  # type: ignore[attr-defined]
    assert caught.value.rpc_code == code
    assert message in caught.value.detail


async def test_a_chain_s_own_transient_codes_fail_over() -> None:
    warming = lambda r: reply(r, error={"code": -28, "message": "Loading block index..."})  # noqa: E731
    async with client(
        "T4", {"10.0.0.1": warming, "rpc.example.org": ok(7)}, transient_codes=(-28,)
    ) as rpc:
        assert await rpc.call("getblockcount") == 7


async def test_when_no_provider_answers_the_chain_is_unavailable_and_no_secret_shows() -> None:
    async with client("T5", {"10.0.0.1": refuse, "rpc.example.org": refuse}, rounds=2) as rpc:
        with structlog.testing.capture_logs() as logs, pytest.raises(ChainUnavailable) as caught:
            await rpc.call("getblockcount")
        assert len(rpc.seen) == 4  # type: ignore[attr-defined]  # two rounds over both
    shown = str(caught.value) + repr(caught.value.extra) + repr(logs) + repr(rpc.providers)
    assert "http://10.0.0.1:8332" in shown
    for secret in SECRETS:
        assert secret not in shown
    assert {entry["kind"] for entry in logs} == {"connect"}


async def test_credentials_go_as_basic_auth_and_the_path_is_kept() -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return reply(request, 1)

    async with client("T6", {"10.0.0.1": record, "rpc.example.org": record}, urls=(A,)) as rpc:
        await rpc.call("getblockcount")
    request = requests[0]
    assert request.headers["Authorization"] == httpx.BasicAuth("alice", "s3cret-pass")._auth_header
    assert request.url.userinfo == b""
    async with client("T6", {"rpc.example.org": record}, urls=(B,)) as rpc:
        await rpc.call("getblockcount")
    assert requests[1].url.path == "/v3/KEY-IN-PATH"
    assert "Authorization" not in requests[1].headers


async def test_numbers_are_read_as_decimal_and_written_exactly() -> None:
    sent: list[bytes] = []

    def echo(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        body = b'{"jsonrpc":"2.0","id":%d,"result":{"value":0.1,"big":123456789012345678901234}}'
        return httpx.Response(200, content=body % json.loads(request.content)["id"])

    async with client("T7", {"10.0.0.1": echo}, urls=(A,)) as rpc:
        result = await rpc.call("sendtoaddress", ["addr", Decimal("0.30000001")])
    assert result == {"value": Decimal("0.1"), "big": 123456789012345678901234}
    assert type(result["value"]) is Decimal
    assert b'"params": ["addr", 0.30000001]' in sent[0]


async def test_a_result_parse_cannot_read_moves_on_to_the_next_provider() -> None:
    def parse(result: Any) -> int:
        if not isinstance(result, int):
            raise MalformedResponse("not a height")
        return result

    async with client("T8", {"10.0.0.1": ok("garbage"), "rpc.example.org": ok(5)}) as rpc:
        assert await rpc.call("getblockcount", parse=parse) == 5


async def test_a_batch_returns_each_result_or_that_call_s_rejection_in_order() -> None:
    def batch(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        out = [
            {"jsonrpc": "2.0", "id": items[1]["id"], "error": {"code": -5, "message": "gone"}},
            {"jsonrpc": "2.0", "id": items[0]["id"], "result": "a"},
            {"jsonrpc": "2.0", "id": items[2]["id"], "result": "c"},
        ]
        return httpx.Response(200, json=out)

    async with client("T9", {"10.0.0.1": batch}, urls=(A,)) as rpc:
        results = await rpc.batch(
            [("getrawtransaction", [t, True]) for t in "abc"], parse=str.upper
        )
        assert await rpc.batch([], parse=str) == []
    assert results[0] == "A"
    assert results[2] == "C"
    assert isinstance(results[1], RpcCallRejected)
    assert results[1].rpc_code == -5


async def test_a_batch_with_a_transient_error_fails_over_whole() -> None:
    def flaky(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        return httpx.Response(
            200,
            json=[
                {"jsonrpc": "2.0", "id": items[0]["id"], "error": {"code": -32603, "message": "x"}}
            ]
            + [{"jsonrpc": "2.0", "id": i["id"], "result": 1} for i in items[1:]],
        )

    def good(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        return httpx.Response(
            200, json=[{"jsonrpc": "2.0", "id": i["id"], "result": 2} for i in items]
        )

    async with client("T10", {"10.0.0.1": flaky, "rpc.example.org": good}) as rpc:
        assert await rpc.batch([("m", []), ("m", [])], parse=int) == [2, 2]


async def test_a_failing_provider_s_breaker_opens_and_it_is_skipped_until_it_may_probe() -> None:
    async with client("T11", {"10.0.0.1": refuse, "rpc.example.org": ok(1)}) as rpc:
        for _ in range(4):
            assert await rpc.call("getblockcount") == 1
        assert state("T11", A) == 2.0
        assert rpc.providers[0].breaker.state is CircuitState.OPEN
        rpc.seen.clear()  # type: ignore[attr-defined]
        assert await rpc.call("getblockcount") == 1
        assert rpc.seen == ["rpc.example.org"]  # type: ignore[attr-defined]
    errors = REGISTRY.get_sample_value(
        "coinpay_rpc_errors_total",
        {"chain": "T11", "provider": "http://10.0.0.1:8332", "kind": "connect"},
    )
    assert errors == 4.0


async def test_rejected_calls_do_not_count_against_a_provider() -> None:
    rejects = lambda r: reply(r, error={"code": -5, "message": "No such transaction"})  # noqa: E731
    async with client("T12", {"10.0.0.1": rejects}, urls=(A,)) as rpc:
        for _ in range(10):
            with pytest.raises(RpcCallRejected):
                await rpc.call("getrawtransaction", ["00" * 32, True])
        assert rpc.providers[0].breaker.state is CircuitState.CLOSED


async def test_a_call_may_take_server_range_codes_as_its_own_rejection() -> None:
    # geth refuses a transaction it already has with -32000, like a node in trouble would.
    known = lambda r: reply(r, error={"code": -32000, "message": "already known"})  # noqa: E731
    async with client("T13", {"10.0.0.1": known, "rpc.example.org": ok("0x1")}) as rpc:
        for _ in range(10):
            with pytest.raises(RpcCallRejected, match="already known") as caught:
                await rpc.call("eth_sendRawTransaction", ["0x00"], rejected_codes={-32000})
        assert caught.value.rpc_code == -32000
        assert set(rpc.seen) == {"10.0.0.1"}  # type: ignore[attr-defined]
        assert rpc.providers[0].breaker.state is CircuitState.CLOSED
        assert await rpc.call("eth_sendRawTransaction", ["0x00"]) == "0x1"  # fails over


def test_a_client_needs_a_url() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RpcClient("ETH", [])
    with pytest.raises(ValueError, match="http"):
        RpcClient("ETH", ["ftp://example.org"])
