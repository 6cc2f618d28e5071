"""The raw-block reader on blocks built with embit: what goes in comes out (every output paying
an address, exact amounts, coinbase left out), and a block cut short or changed anywhere is
either refused as MalformedResponse or read exactly as it was (a witness is not in the
merkle root), never anything else."""

from __future__ import annotations

import hashlib

import pytest
from embit import compact
from embit.script import Script, Witness
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coinpay.chains.base import Transfer
from keel.coinpay.chains.esplora import EsploraSource, read_block, read_transaction
from keel.coinpay.chains.providers import MalformedResponse
from keel.coinpay.chains.rest import RestClient
from keel.coinpay.wallets import Family, Network, script_address

h20 = st.binary(min_size=20, max_size=20)
h32 = st.binary(min_size=32, max_size=32)
SCRIPTS = st.one_of(
    h20.map(lambda h: b"\x00\x14" + h),  # P2WPKH
    h32.map(lambda h: b"\x00\x20" + h),  # P2WSH
    h20.map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),  # P2PKH
    h20.map(lambda h: b"\xa9\x14" + h + b"\x87"),  # P2SH
    st.binary(max_size=40).map(lambda d: b"\x6a" + bytes([len(d)]) + d),  # OP_RETURN
)
OUTPUTS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=21 * 10**14), SCRIPTS), min_size=1, max_size=5
)


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def transaction(outputs: list[tuple[int, bytes]], *, seed: bytes, segwit: bool) -> Transaction:
    spent = TransactionInput(sha256d(seed), 0, sequence=0xFFFFFFFD)
    if segwit:
        spent.witness = Witness([b"\x30" * 71, b"\x02" * 33])
    return Transaction(vin=[spent], vout=[TransactionOutput(v, Script(s)) for v, s in outputs])


def coinbase() -> Transaction:
    return Transaction(
        vin=[TransactionInput(bytes(32), 0xFFFFFFFF, Script(b"\x01\x65"))],
        vout=[TransactionOutput(50 * 10**8, Script(b"\x00\x14" + bytes(range(20))))],
    )


def merkle(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = hashes + hashes[-1:] if len(hashes) % 2 else hashes
        hashes = [sha256d(hashes[i] + hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def serialise(parent: bytes, txs: list[Transaction]) -> bytes:
    header = (
        (0x20000000).to_bytes(4, "little")
        + parent
        + merkle([tx.hash() for tx in txs])
        + (1_700_000_000).to_bytes(4, "little")
        + bytes.fromhex("ffff7f20")
        + (7).to_bytes(4, "little")
    )
    return header + compact.to_bytes(len(txs)) + b"".join(tx.serialize() for tx in txs)


def blocks() -> st.SearchStrategy[tuple[bytes, list[Transaction]]]:
    txs = st.lists(st.tuples(OUTPUTS, st.booleans()), max_size=6).map(
        lambda specs: (
            [coinbase()]
            + [
                transaction(outputs, seed=bytes([i]), segwit=segwit)
                for i, (outputs, segwit) in enumerate(specs)
            ]
        )
    )
    return st.tuples(h32, txs)


SOURCE = EsploraSource("BTC", RestClient("BTC", ["http://127.0.0.1:9"]), network=Network.REGTEST)


def expected(txs: list[Transaction]) -> list[Transfer]:
    out = []
    for tx in txs[1:]:
        for n, o in enumerate(tx.vout):
            address = script_address(Family.BTC, o.script_pubkey.data, Network.REGTEST)
            if address is not None and o.value:
                out.append(Transfer("BTC", tx.txid().hex(), n, address, o.value))
    return out


@given(block=blocks())
def test_a_block_reads_back_as_built(block: tuple[bytes, list[Transaction]]) -> None:
    parent, txs = block
    raw = serialise(parent, txs)
    read = read_block(raw)
    assert read.hash == sha256d(raw[:80])[::-1].hex()
    assert read.parent_hash == parent[::-1].hex()
    assert [tx.txid() for tx in read.transactions] == [tx.txid() for tx in txs]
    transfers = [t for tx in read.transactions for t in SOURCE._outputs(tx)]
    assert transfers == expected(txs)  # coinbase and OP_RETURN left out, amounts exact


@settings(max_examples=200)
@given(block=blocks(), data=st.data())
def test_a_damaged_block_is_refused_or_read_unchanged(
    block: tuple[bytes, list[Transaction]], data: st.DataObject
) -> None:
    parent, txs = block
    raw = serialise(parent, txs)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(MalformedResponse):
        read_block(raw[:cut])
    at = data.draw(st.integers(min_value=80, max_value=len(raw) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    damaged = raw[:at] + bytes([raw[at] ^ flip]) + raw[at + 1 :]
    try:
        read = read_block(damaged)
    except MalformedResponse:
        return
    transfers = [t for tx in read.transactions for t in SOURCE._outputs(tx)]
    assert transfers == expected(txs)


def test_a_transaction_with_trailing_bytes_is_refused() -> None:
    tx = transaction([(1000, b"\x00\x14" + bytes(20))], seed=b"x", segwit=True).serialize()
    assert read_transaction(tx).txid() is not None
    with pytest.raises(MalformedResponse):
        read_transaction(tx + b"\x00")
    with pytest.raises(MalformedResponse):
        read_transaction(tx[:-1])
