"""Writes the Esplora recordings of this folder from a real litecoind in regtest (see README.md).

    PYTHONPATH=src:. .venv/bin/python tests/coinpay/chains/recordings/esplora/record.py

Every block and transaction is one the node made and serialised; the JSON around them has the
shapes of Blockstream's Esplora API (API.md) and electrs' error texts. Not run by pytest.
"""

from __future__ import annotations

import ast
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from bip_utils import SegwitBech32Encoder
from tests.chains_nodes import Litecoind, NodeRpcError, _wallet_node
from tests.replay import dump_json

HERE = Path(__file__).parent
# The first live BTC payment of tests.coinpay.conftest's harness on regtest: its address (the
# same key as rltc1q6rz28… on Litecoin regtest) and amount (25.00 USD at the fixture rate).
PAYMENT_ADDRESS = "rltc1q6rz28mcfaxtmd6v789l9rrlrusdprr9puuzgkg"
BTC_PAYMENT_ADDRESS = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"  # what a BTC source asks
PAYMENT_SATS = 25707
# BIP350's Taproot test program, written for Litecoin regtest (the node pays it like any output).
TAPROOT_PROGRAM = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
NOT_FOUND_BLOCK = {"status": 404, "body_text": "Block not found"}
NOT_FOUND_TX = {"status": 404, "body_text": "Transaction not found"}


def get(path: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"request": {"method": "GET", "path": path}, "response": response}


def text(body: str) -> dict[str, Any]:
    return {"status": 200, "headers": {"Content-Type": "text/plain"}, "body_text": body}


def js(body: Any) -> dict[str, Any]:
    return {"status": 200, "headers": {"Content-Type": "application/json"}, "body": body}


def raw(body_hex: str) -> dict[str, Any]:
    return {
        "status": 200,
        "headers": {"Content-Type": "application/octet-stream"},
        "body_hex": body_hex,
    }


def sats(value: Decimal) -> int:
    return int(value * 100_000_000)


def block_json(node: Litecoind, block_hash: str) -> dict[str, Any]:
    """GET /block/:hash as Esplora writes it (from the node's own header)."""
    b = node.rpc("getblock", block_hash, 1)
    out = {
        "id": b["hash"],
        "height": b["height"],
        "version": b["version"],
        "timestamp": b["time"],
        "tx_count": b["nTx"],
        "size": b["size"],
        "weight": b["weight"],
        "merkle_root": b["merkleroot"],
        "previousblockhash": b.get("previousblockhash"),
        "mediantime": b["mediantime"],
        "nonce": b["nonce"],
        "bits": int(b["bits"], 16),
        "difficulty": b["difficulty"],
    }
    if out["previousblockhash"] is None:
        del out["previousblockhash"]
    return out


def block_exchanges(node: Litecoind, block_hash: str) -> list[dict[str, Any]]:
    height = node.rpc("getblock", block_hash, 1)["height"]
    return [
        get(f"/block-height/{height}", text(block_hash)),
        get(f"/block/{block_hash}", js(block_json(node, block_hash))),
        get(f"/block/{block_hash}/raw", raw(node.rpc("getblock", block_hash, 0))),
    ]


def tip_exchanges(node: Litecoind, block_hash: str) -> list[dict[str, Any]]:
    return [
        get("/blocks/tip/hash", text(block_hash)),
        get("/blocks/tip/height", text(str(node.rpc("getblock", block_hash, 1)["height"]))),
    ]


def genesis(node: Litecoind) -> dict[str, Any]:
    return get("/block-height/0", text(node.rpc("getblockhash", 0)))


def diverse_tx(node: Litecoind) -> str:
    """One transaction paying P2WPKH (our payment address), P2PKH, P2SH-P2WPKH, P2WSH, Taproot
    and an OP_RETURN: every output kind a block carries."""
    legacy = node.rpc("getnewaddress", "", "legacy")
    nested = node.rpc("getnewaddress", "", "p2sh-segwit")
    multisig = node.rpc("addmultisigaddress", 1, [node.new_address()], "", "bech32")["address"]
    taproot = SegwitBech32Encoder.Encode("rltc", 1, bytes.fromhex(TAPROOT_PROGRAM))
    outputs = [
        {PAYMENT_ADDRESS: "0.00025707"},
        {legacy: "0.1"},
        {nested: "0.2"},
        {multisig: "0.3"},
        {taproot: "0.001"},
        {"data": "6b65656c"},  # "keel"
    ]
    created = node.rpc("createrawtransaction", [], outputs)
    funded = node.rpc("fundrawtransaction", created)["hex"]
    signed = node.rpc("signrawtransactionwithwallet", funded)
    assert signed["complete"], signed
    return str(node.rpc("sendrawtransaction", signed["hex"]))


def record_blocks(node: Litecoind) -> None:
    """blocks.json: a tip whose block has every output kind, its parent, nothing above it."""
    parent = node.mine(1)[0]
    txid = diverse_tx(node)
    tip = node.mine_block_with(txid)
    height = node.rpc("getblock", tip, 1)["height"]
    write(
        "blocks",
        [
            genesis(node),
            *tip_exchanges(node, tip),
            *block_exchanges(node, tip),
            *block_exchanges(node, parent),
            get(f"/block-height/{height + 1}", NOT_FOUND_BLOCK),
        ],
        note=f"tip {tip} at {height} pays {PAYMENT_ADDRESS} in {txid}",
    )
    record_failures(node, parent, tip)


def record_failures(node: Litecoind, parent: str, tip: str) -> None:
    """down.json: a provider answering 503 and a proxy's 502 page; garbage.json: a provider
    answering the blocks of blocks.json damaged (unreadable JSON, a block cut in half, one
    with an output's amount changed, bytes that are no block at all)."""
    unavailable = {"status": 503, "body_text": "Service Unavailable"}
    bad_gateway = {"status": 502, "body_text": "<html><body>502 Bad Gateway</body></html>"}
    write(
        "down",
        [
            get("/block-height/0", unavailable),
            get("/blocks/tip/hash", bad_gateway),
            get(f"/block/{tip}", unavailable),
        ],
        note="every request fails with a server error",
    )
    height = node.rpc("getblock", tip, 1)["height"]
    block = node.rpc("getblock", tip, 0)
    payment_value = (25707).to_bytes(8, "little").hex()
    assert block.count(payment_value) == 1
    tampered = block.replace(payment_value, (2_570_700).to_bytes(8, "little").hex())
    write(
        "garbage",
        [
            genesis(node),
            get("/blocks/tip/hash", text(tip)),
            get(f"/block/{tip}", {"status": 200, "body_text": '{"id": "' + tip[:20]}),
            get(f"/block-height/{height}", text(tip)),
            get(f"/block/{tip}/raw", raw(block[: len(block) // 4 * 2])),
            get(f"/block-height/{height - 1}", text(parent)),
            get(f"/block/{parent}/raw", raw("00" * 81)),
            get(f"/block-height/{height + 1}", text(tip)),  # the tip's block, asked as the next
            get(f"/block-height/{height + 2}", text("not a hash")),
            get(f"/block-height/{height + 3}", text(tip[::-1])),
            get(f"/block/{tip[::-1]}/raw", raw(tampered)),
        ],
        note=f"{tip} at {height}, damaged; {height + 3}: its payment output made 100 times larger",
    )


def record_mempool(node: Litecoind) -> None:
    """mempool.json: three transactions listed, two served, one gone by the time it is asked."""
    first = node.send(PAYMENT_ADDRESS, Decimal("0.001"))
    second = node.send(node.new_address(), Decimal("0.5"))
    gone = node.send(node.new_address(), Decimal("0.25"))
    write(
        "mempool",
        [
            get("/mempool/txids", js([first, second, gone])),
            get(f"/tx/{first}/hex", text(node.rpc("getrawtransaction", first))),
            get(f"/tx/{second}/hex", text(node.rpc("getrawtransaction", second))),
            get(f"/tx/{gone}/hex", NOT_FOUND_TX),
        ],
        note=f"{first} pays {PAYMENT_ADDRESS} 100000",
    )
    node.mine(1)


def record_chain(node: Litecoind) -> None:
    """chain.json: the scanner's run. Tip A; the payment in the mempool; B mines it, C1 on top;
    then C1 is replaced by C2 and D2 (a reorg one block deep), the payment staying in B."""
    a = node.mine(1)[0]
    payment = node.send(PAYMENT_ADDRESS, Decimal(PAYMENT_SATS) / 100_000_000)
    payment_hex = node.rpc("getrawtransaction", payment)
    b = node.mine(1)[0]
    assert payment in node.rpc("getblock", b, 1)["tx"]
    c1 = node.mine(1)[0]
    node.rpc("invalidateblock", c1)
    c2, d2 = node.mine(2, node.new_address())
    assert node.rpc("getblock", c2, 1)["previousblockhash"] == b
    exchanges = [
        genesis(node),
        # Step 1 and 2 see A; 3 sees C1; 4 on see D2 (served in order, the last repeating).
        get("/blocks/tip/hash", text(a)),
        get("/blocks/tip/hash", text(a)),
        get("/blocks/tip/hash", text(c1)),
        get("/blocks/tip/hash", text(d2)),
        get("/mempool/txids", js([])),
        get("/mempool/txids", js([payment])),
        get("/mempool/txids", js([])),
        get(f"/tx/{payment}/hex", text(payment_hex)),
    ]
    for block in (a, b, c1):
        exchanges += block_exchanges(node, block)
    for block in (c2, d2):  # /block-height/<C's height> answers C1 first, then C2
        exchanges += block_exchanges(node, block)
    write("chain", exchanges, note=f"payment {payment} in {b}; {c1} replaced by {c2}, {d2}")


def record_sweeps(node: Litecoind) -> None:
    """sweeps.json: POST /tx fresh, then again while in the mempool, then once mined; a refused
    one; /tx/:txid/status of a mined, a waiting and an unknown transaction; a payment address's
    unspent outputs; fee estimates."""
    funding = node.send(PAYMENT_ADDRESS, Decimal("0.001"))
    node.mine(2)
    unspent = node.rpc("listunspent", 1, 9999, [], True, {"minimumAmount": 1})[0]
    tx = node.rpc(
        "createrawtransaction",
        [{"txid": unspent["txid"], "vout": unspent["vout"]}],
        {node.new_address(): str(unspent["amount"] - Decimal("0.0001"))},
    )
    signed = node.rpc("signrawtransactionwithwallet", tx)["hex"]
    sweep = node.rpc("sendrawtransaction", signed)
    mempool_answer = _refusal(node, signed)
    waiting = node.send(node.new_address(), Decimal("0.3"))
    waiting_hex = node.rpc("getrawtransaction", waiting)
    mined_in = node.rpc("generateblock", node.new_address(), [sweep])["hash"]
    mined_answer = _refusal(node, signed)
    height = node.rpc("getblock", mined_in, 1)["height"]
    node.mine(2)
    tip = node.rpc("getbestblockhash")
    spent = node.rpc(
        "createrawtransaction",
        [{"txid": unspent["txid"], "vout": unspent["vout"]}],
        {node.new_address(): "0.1"},
    )
    spent_signed = node.rpc("signrawtransactionwithwallet", spent)["hex"]
    refused_answer = _refusal(node, spent_signed)
    assert mined_answer is not None
    assert refused_answer is not None
    funding_tx = node.rpc("gettransaction", funding)
    vout = next(d["vout"] for d in funding_tx["details"] if d["address"] == PAYMENT_ADDRESS)
    funding_height = node.rpc("getblock", funding_tx["blockhash"], 1)["height"]
    unknown = "ab" * 32
    post = lambda answer: {"request": {"method": "POST", "path": "/tx"}, "response": answer}  # noqa: E731
    write(
        "sweeps",
        [
            post(text(sweep)),
            # Litecoin Core 0.21 (as Bitcoin Core >= 0.21) takes a transaction it holds again
            # and answers its txid; older nodes refused it as "txn-already-in-mempool".
            post(
                text(sweep)
                if mempool_answer is None
                else {"status": 400, "body_text": mempool_answer}
            ),
            post({"status": 400, "body_text": mined_answer}),
            get("/blocks/tip/height", text(str(node.rpc("getblock", tip, 1)["height"]))),
            get(
                f"/tx/{sweep}/status",
                js(
                    {
                        "confirmed": True,
                        "block_height": height,
                        "block_hash": mined_in,
                        "block_time": node.rpc("getblock", mined_in, 1)["time"],
                    }
                ),
            ),
            get(f"/tx/{waiting}/status", js({"confirmed": False})),
            get(f"/tx/{waiting}/hex", text(waiting_hex)),
            get(f"/tx/{unknown}/status", js({"confirmed": False})),
            get(f"/tx/{unknown}/hex", NOT_FOUND_TX),
            get(
                f"/address/{BTC_PAYMENT_ADDRESS}/utxo",
                js(
                    [
                        {
                            "txid": funding,
                            "vout": vout,
                            "status": {
                                "confirmed": True,
                                "block_height": funding_height,
                                "block_hash": funding_tx["blockhash"],
                                "block_time": funding_tx["blocktime"],
                            },
                            "value": 100000,
                        },
                        {"txid": waiting, "vout": 0, "status": {"confirmed": False}, "value": 7},
                    ]
                ),
            ),
            get(
                "/fee-estimates",
                js(
                    {
                        "1": Decimal("87.882"),
                        "2": Decimal("87.882"),
                        "6": Decimal("68.285"),
                        "144": Decimal("1.027"),
                    }
                ),
            ),
        ],
        note=f"sweep {sweep} mined at {height}; {waiting} in the mempool",
    )
    write(
        "broadcast_refused",
        [
            {
                "request": {"method": "POST", "path": "/tx"},
                "response": {"status": 400, "body_text": refused_answer},
            }
        ],
        note="the sweep's input spent again: the node refuses it",
    )


def _refusal(node: Litecoind, signed: str) -> str | None:
    """The node's refusal of ``signed`` in electrs' words (its RpcError's text); None when the
    node takes it."""
    try:
        node.rpc("sendrawtransaction", signed)
    except NodeRpcError as exc:  # "method: {'code': …, 'message': …}"
        error = ast.literal_eval(str(exc).split(": ", 1)[1])
        return "sendrawtransaction RPC error: " + json.dumps(error, separators=(",", ":"))
    return None


def write(name: str, exchanges: list[dict[str, Any]], *, note: str) -> None:
    body = {"note": note, "exchanges": exchanges}
    (HERE / f"{name}.json").write_text(dump_json(body) + "\n", "utf-8")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = _wallet_node(Path(tmp))
        try:
            record_blocks(node)
            record_mempool(node)
            record_chain(node)
            record_sweeps(node)
        finally:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
