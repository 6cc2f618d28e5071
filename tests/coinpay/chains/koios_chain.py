"""A Cardano chain served as Koios serves it, through ``tests.replay``.

No Koios or cardano-node exists in any registry, so the answers are transcribed from Koios's
documented shapes (cardano-community/koios-artifacts: ``specs/`` and the ``grest`` SQL that
writes each row). :class:`KoiosChain` keeps a small chain (blocks, their transactions, the UTxO
set, submitted transactions) and writes it as one multi-exchange recording,
``<root>/koios/<name>.json``, after each change; the replay server reads the file per request,
so a test mines a block and the next scan sees it. The static recordings beside this module
(``recordings/koios/``) were written with the same row builders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keel.coinpay.chains import cardano_tx
from keel.coinpay.chains.cardano import BLOCK_FIELDS
from tests.replay import ReplayServer, checked, serve_recordings

__all__ = [
    "EPOCH_PARAMS",
    "RECORDINGS",
    "KoiosChain",
    "Output",
    "block_row",
    "epoch_params_row",
    "koios_replay",
    "tx_info_row",
    "tx_status_row",
    "utxo_info_row",
]

RECORDINGS = Path(__file__).parent / "recordings"


@pytest.fixture(scope="session")
def _koios_server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def koios_replay(_koios_server: ReplayServer) -> Iterator[ReplayServer]:
    """The static Koios recordings; fails the test on a request nobody recorded."""
    with checked(_koios_server) as server:
        yield server


TX_INFO_FLAGS = {
    "_inputs": False,
    "_metadata": False,
    "_assets": True,
    "_withdrawals": False,
    "_certs": False,
    "_scripts": False,
    "_bytecode": False,
    "_governance": False,
}

#: cardano-submit-api's answer to a transaction whose inputs are spent (abridged).
BAD_INPUTS = (
    '{"contents":{"contents":{"contents":{"era":"ShelleyBasedEraConway","error":['
    '"ConwayUtxowFailure (UtxoFailure (BadInputsUTxO (fromList [TxIn (TxId {unTxId = '
    '...}) (TxIx {unTxIx = 0})])))"],"kind":"ShelleyTxValidationError"},'
    '"tag":"TxValidationErrorInCardanoMode"},"tag":"TxCmdTxSubmitValidationError"},'
    '"tag":"TxSubmitFail"}'
)

#: The node's answer to a transaction submitted at or after its TTL (abridged).
OUTSIDE_VALIDITY = (
    '{"contents":{"contents":{"contents":{"era":"ShelleyBasedEraConway","error":['
    '"ConwayUtxowFailure (UtxoFailure (OutsideValidityIntervalUTxO (ValidityInterval '
    '{invalidBefore = SNothing, invalidHereafter = SJust (SlotNo %d)}) (SlotNo %d)))"],'
    '"kind":"ShelleyTxValidationError"},"tag":"TxValidationErrorInCardanoMode"},'
    '"tag":"TxCmdTxSubmitValidationError"},"tag":"TxSubmitFail"}'
)

#: ``/epoch_params`` of a Conway epoch (mainnet's values; Koios writes lovelace as strings).
EPOCH_PARAMS: dict[str, Any] = {
    "epoch_no": 540,
    "min_fee_a": 44,
    "min_fee_b": 155381,
    "max_block_size": 90112,
    "max_tx_size": 16384,
    "max_bh_size": 1100,
    "key_deposit": "2000000",
    "pool_deposit": "500000000",
    "max_epoch": 18,
    "optimal_pool_count": 500,
    "influence": 0.3,
    "monetary_expand_rate": 0.003,
    "treasury_growth_rate": 0.2,
    "decentralisation": 0,
    "extra_entropy": None,
    "protocol_major": 10,
    "protocol_minor": 0,
    "min_utxo_value": "0",
    "min_pool_cost": "170000000",
    "nonce": "1a3be38bcbb7911969283716ad7aa550250226b76a61fc51cc9a9a35d9276d81",
    "block_hash": "5d2a7cfbb2a1c2fe2ef3c4e1e2c55d3b0b1f1f0b69e8e4cdbd5b0ab5b1d6e0a1",
    "cost_models": None,
    "price_mem": 0.0577,
    "price_step": 7.21e-05,
    "max_tx_ex_mem": 14000000,
    "max_tx_ex_steps": 10000000000,
    "max_block_ex_mem": 62000000,
    "max_block_ex_steps": 20000000000,
    "max_val_size": 5000,
    "collateral_percent": 150,
    "max_collateral_inputs": 3,
    "coins_per_utxo_size": "4310",
    "min_fee_ref_script_cost_per_byte": 15,
}


@dataclass(frozen=True)
class Output:
    """An output of a transaction: address, lovelace, native tokens (policy, name, quantity)."""

    address: str
    lovelace: int
    assets: tuple[tuple[str, str, int], ...] = ()


def fake_hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def block_row(
    height: int, block_hash: str, parent: str, *, slot: int, epoch: int = 540, tx_count: int = 0
) -> dict[str, Any]:
    """A ``/blocks`` row with the columns ``KoiosSource`` selects."""
    row = {
        "hash": block_hash,
        "block_height": height,
        "parent_hash": parent,
        "abs_slot": slot,
        "epoch_no": epoch,
        "tx_count": tx_count,
    }
    assert list(row) == BLOCK_FIELDS.split(",")
    return row


def _asset_list(assets: tuple[tuple[str, str, int], ...]) -> list[dict[str, Any]]:
    return [
        {
            "policy_id": policy,
            "asset_name": name,
            "fingerprint": "asset1" + fake_hash(policy, name)[:38],
            "decimals": 0,
            "quantity": str(quantity),
        }
        for policy, name, quantity in assets
    ]


def tx_info_row(
    tx_hash: str,
    block_hash: str,
    height: int,
    slot: int,
    index: int,
    outputs: list[Output],
    *,
    valid: bool = True,
) -> dict[str, Any]:
    """A ``/tx_info`` row (``_assets`` true, the other flags false)."""
    return {
        "tx_hash": tx_hash,
        "block_hash": block_hash,
        "block_height": height,
        "epoch_no": 540,
        "epoch_slot": slot % 432000,
        "absolute_slot": slot,
        "tx_timestamp": 1591566291 + slot,
        "tx_block_index": index,
        "tx_size": 296,
        "total_output": str(sum(o.lovelace for o in outputs)),
        "fee": "168405",
        "treasury_donation": "0",
        "deposit": "0",
        "invalid_before": None,
        "invalid_after": str(slot + 7200),
        "valid_contract": valid,
        "collateral_inputs": [],
        "collateral_output": None,
        "reference_inputs": [],
        "inputs": [],
        "outputs": [
            {
                "payment_addr": {"bech32": o.address, "cred": fake_hash(o.address)[:56]},
                "stake_addr": None,
                "tx_hash": tx_hash,
                "tx_index": n,
                "value": str(o.lovelace),
                "datum_hash": None,
                "inline_datum": None,
                "reference_script": None,
                "asset_list": _asset_list(o.assets),
            }
            for n, o in enumerate(outputs)
        ],
        "withdrawals": None,
        "assets_minted": None,
        "metadata": None,
        "certificates": None,
        "native_scripts": None,
        "plutus_contracts": None,
        "voting_procedures": None,
        "proposal_procedures": None,
    }


def utxo_info_row(
    tx_hash: str, index: int, output: Output, *, height: int, spent: bool = False
) -> dict[str, Any]:
    """A ``/utxo_info`` row with ``_extended`` true."""
    return {
        "tx_hash": tx_hash,
        "tx_index": index,
        "address": output.address,
        "value": str(output.lovelace),
        "stake_address": None,
        "payment_cred": fake_hash(output.address)[:56],
        "epoch_no": 540,
        "block_height": height,
        "block_time": 1704757130,
        "datum_hash": None,
        "inline_datum": None,
        "reference_script": None,
        "asset_list": _asset_list(output.assets),
        "is_spent": spent,
    }


def epoch_params_row(epoch: int) -> dict[str, Any]:
    return {**EPOCH_PARAMS, "epoch_no": epoch}


def tx_status_row(tx_hash: str, after: int | None) -> dict[str, Any]:
    return {"tx_hash": tx_hash, "num_confirmations": after}


def exchange(
    method: str,
    path: str,
    body: Any,
    *,
    query: dict[str, str] | None = None,
    json_body: Any = None,
    status: int = 200,
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "path": path}
    if query:
        request["query"] = query
    if json_body is not None:
        request["json"] = json_body
    return {
        "request": request,
        "response": {
            "status": status,
            "headers": {"Content-Type": "application/json; charset=utf-8"},
            "body": body,
        },
    }


@dataclass
class _Block:
    height: int
    hash: str
    parent: str
    slot: int
    txs: list[tuple[str, list[Output], bool]]


@dataclass
class KoiosChain:
    """A chain written as a Koios recording after each change (module docstring)."""

    root: Path
    name: str = "chain"
    start: int = 11_000_000
    blocks: list[_Block] = field(default_factory=list)
    submitted: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # hash -> inputs
    mined_submitted: dict[str, int] = field(default_factory=dict)  # tx hash -> height
    spent: set[tuple[str, int]] = field(default_factory=set)
    raws: dict[str, str] = field(default_factory=dict)  # hash -> the submitted bytes, hex
    lost: set[str] = field(default_factory=set)  # accepted by the node, then dropped

    def __post_init__(self) -> None:
        (self.root / "koios").mkdir(parents=True, exist_ok=True)
        self.blocks.append(
            _Block(
                self.start,
                fake_hash("b", self.start),
                fake_hash("b", self.start - 1),
                140_000_000,
                [],
            )
        )
        self.write()

    @property
    def tip(self) -> _Block:
        return self.blocks[-1]

    def mine(self, *txs: list[Output] | tuple[list[Output], bool], gap: int = 20) -> list[str]:
        """A new block, ``gap`` slots after the tip, holding transactions of ``txs`` (outputs,
        or (outputs, valid)), and the submitted transactions not mined yet that are still valid
        (not lost, inputs unspent, before their TTL); returns the new transactions' hashes."""
        height = self.tip.height + 1
        slot = self.tip.slot + gap
        block = _Block(height, fake_hash("b", height, len(self.blocks)), self.tip.hash, slot, [])
        hashes = []
        for tx in txs:
            outputs, valid = tx if isinstance(tx, tuple) else (tx, True)
            tx_hash = fake_hash("tx", height, len(block.txs))
            block.txs.append((tx_hash, list(outputs), valid))
            hashes.append(tx_hash)
        for tx_hash, spends in self.submitted.items():
            if tx_hash not in self.mined_submitted and self._refusal(tx_hash, slot) is None:
                self.mined_submitted[tx_hash] = height
                self.spent.update(spends)  # db-sync, so Koios, sees spends once in a block
        self.blocks.append(block)
        self.write()
        return hashes

    def outputs_of(self, tx_hash: str) -> list[Output]:
        for block in self.blocks:
            for h, outputs, _ in block.txs:
                if h == tx_hash:
                    return outputs
        raise KeyError(tx_hash)

    def expect_submit(
        self,
        tx_hash: str,
        inputs: list[tuple[str, int]],
        *,
        raw: str | None = None,
        lands: bool = True,
    ) -> None:
        """``/submittx`` accepts the transaction ``tx_hash`` spending ``inputs`` (202 with its
        id), then answers a resubmission as the node does once its inputs are spent (400,
        ``BadInputsUTxO``); ``/tx_status`` knows it once a block holds it (the next one mined).
        With ``raw`` (its bytes, hex) only those bytes are answered, as the node would at the
        tip: 202 while valid, ``BadInputsUTxO`` once an input is spent, then
        ``OutsideValidityIntervalUTxO`` from its TTL on. ``lands=False``: accepted each time and
        dropped (a node restart empties its mempool), never mined. The sweep's own outputs are
        left out of the blocks: nothing here watches them."""
        self.submitted[tx_hash] = inputs
        if raw is not None:
            self.raws[tx_hash] = raw
        if not lands:
            self.lost.add(tx_hash)
        self.write()

    def spend(self, tx_hash: str, index: int) -> None:
        """The output ``tx_hash#index`` spent by a transaction nothing here watches."""
        self.spent.add((tx_hash, index))
        self.write()

    def _refusal(self, tx_hash: str, slot: int) -> str | None:
        """Why the node refuses the submitted ``tx_hash`` at ``slot`` (None: it accepts it)."""
        if tx_hash in self.mined_submitted or any(i in self.spent for i in self.submitted[tx_hash]):
            return BAD_INPUTS
        raw = self.raws.get(tx_hash)
        if raw is not None:
            ttl = cardano_tx.read_signed(bytes.fromhex(raw)).ttl
            if slot >= ttl:
                return OUTSIDE_VALIDITY % (ttl, slot)
        if tx_hash in self.lost:
            return "lost"
        return None

    def write(self) -> None:
        exchanges: list[dict[str, Any]] = []
        tip = self.tip
        exchanges.append(
            exchange(
                "GET",
                "/blocks",
                [self._row(tip)],
                query={"select": BLOCK_FIELDS, "limit": "1"},
            )
        )
        for block in self.blocks:
            exchanges.append(
                exchange(
                    "GET",
                    "/blocks",
                    [self._row(block)],
                    query={"block_height": f"eq.{block.height}", "select": BLOCK_FIELDS},
                )
            )
            if block.txs:
                hashes = [h for h, _, _ in block.txs]
                exchanges.append(
                    exchange(
                        "POST",
                        "/block_txs",
                        [
                            {
                                "block_hash": block.hash,
                                "tx_hash": h,
                                "epoch_no": 540,
                                "block_height": block.height,
                                "block_time": 1704757130 + block.slot,
                            }
                            for h in hashes
                        ],
                        json_body={"_block_hashes": [block.hash]},
                    )
                )
                exchanges.append(
                    exchange(
                        "POST",
                        "/tx_info",
                        [
                            tx_info_row(h, block.hash, block.height, block.slot, n, outs, valid=v)
                            for n, (h, outs, v) in enumerate(block.txs)
                        ],
                        json_body={"_tx_hashes": hashes, **TX_INFO_FLAGS},
                    )
                )
        for above in range(tip.height + 1, tip.height + 3):
            exchanges.append(
                exchange(
                    "GET",
                    "/blocks",
                    [],
                    query={"block_height": f"eq.{above}", "select": BLOCK_FIELDS},
                )
            )
        # /utxo_info answers every output on the chain (Koios answers the refs asked for; the
        # sender looks its own up by reference).
        utxos = [
            utxo_info_row(h, n, o, height=block.height, spent=(h, n) in self.spent)
            for block in self.blocks
            for h, outs, valid in block.txs
            if valid
            for n, o in enumerate(outs)
        ]
        exchanges.append(exchange("POST", "/utxo_info", utxos))
        exchanges.append(
            exchange("GET", "/epoch_params", [epoch_params_row(540)], query={"_epoch_no": "540"})
        )
        for tx_hash in self.submitted:
            raw = self.raws.get(tx_hash)
            if raw is None:
                exchanges.append(exchange("POST", "/submittx", tx_hash, status=202))
                exchanges.append(
                    {
                        "request": {"method": "POST", "path": "/submittx"},
                        "response": {"status": 400, "body_text": BAD_INPUTS},
                    }
                )
            else:
                refusal = self._refusal(tx_hash, tip.slot)
                accepted = exchange("POST", "/submittx", tx_hash, status=202)
                accepted["request"]["body_hex"] = raw
                if refusal not in (None, "lost"):
                    accepted["response"] = {"status": 400, "body_text": refusal}
                exchanges.append(accepted)
            mined = self.mined_submitted.get(tx_hash)
            after = None if mined is None else tip.height - mined
            exchanges.append(
                exchange(
                    "POST",
                    "/tx_status",
                    [tx_status_row(tx_hash, after)],
                    json_body={"_tx_hashes": [tx_hash]},
                )
            )
        path = self.root / "koios" / f"{self.name}.json"
        path.write_text(json.dumps({"exchanges": exchanges}, indent=1))

    def _row(self, block: _Block) -> dict[str, Any]:
        return block_row(
            block.height, block.hash, block.parent, slot=block.slot, tx_count=len(block.txs)
        )
