"""UtxoSender without a node: the fee split is exact, the size estimate bounds the signed
transaction, and a batch with an address of another network, or a key that is not its
address's, is refused before anything is asked of a node. (On litecoind regtest, end to end:
tests/coinpay/chains/test_nodes_ltc_live_flow.py.)"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import pytest
from embit import ec
from embit.script import Script, p2pkh
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.chains import config
from keel.coinpay.chains.base import SweepInput
from keel.coinpay.chains.rpc import RpcClient
from keel.coinpay.chains.utxo_sender import (
    NotSweepable,
    UtxoSender,
    _Coin,
    _signed,
    _vsize,
    forkid_digest,
    open_utxo_sender,
    split_fee,
)
from keel.coinpay.errors import InvalidAddress, InvalidChainConfig
from keel.coinpay.wallets import Family, HDRoot, Network, output_script
from tests.chains_nodes import closed_port_url
from tests.coinpay.conftest import ABANDON

ROOT = HDRoot.from_mnemonic(ABANDON)
PLATFORM = "rltc1qtjyqjwm28e5l0nl9cnkr3mwjyc5jmvlfyexkzs"


@given(
    fee=st.integers(min_value=0, max_value=10**12),
    weights=st.dictionaries(
        st.text("abcdef", min_size=1, max_size=4),
        st.integers(min_value=0, max_value=10**15),
        min_size=1,
        max_size=60,
    ).filter(lambda w: sum(w.values()) > 0),
)
def test_the_fee_is_split_exactly_in_proportion(fee: int, weights: dict[str, int]) -> None:
    shares = split_fee(fee, weights)
    total = sum(weights.values())
    assert shares.keys() == weights.keys()
    assert sum(shares.values()) == fee
    for key, weight in weights.items():
        exact_floor = fee * weight // total
        assert shares[key] in (exact_floor, exact_floor + 1)
        if fee * weight % total == 0:
            assert shares[key] == exact_floor
    if fee <= total:
        assert all(shares[k] <= weights[k] for k in weights)


def test_equal_weights_split_the_odd_unit_to_the_first_key() -> None:
    assert split_fee(5, {"b": 1, "a": 1}) == {"a": 3, "b": 2}
    assert split_fee(0, {"a": 7}) == {"a": 0}


@pytest.mark.parametrize("weights", [{}, {"a": 0}, {"a": -1, "b": 2}])
def test_a_split_needs_positive_weights(weights: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="weights"):
        split_fee(1, weights)


@given(
    inputs=st.integers(min_value=1, max_value=12),
    outputs=st.lists(st.sampled_from([22, 34, 23, 25]), min_size=1, max_size=8),
    seed=st.integers(min_value=1, max_value=2**64),
    family=st.sampled_from([Family.LTC, Family.DOGE, Family.BCH]),
)
def test_the_size_estimate_bounds_the_signed_transaction(
    inputs: int, outputs: list[int], seed: int, family: Family
) -> None:
    # Script lengths: P2WPKH 22, P2WSH/Taproot 34, P2SH 23, P2PKH 25.
    keys = {
        str(n): ec.PrivateKey(hashlib.sha256(f"{seed}:{n}".encode()).digest())
        for n in range(inputs)
    }
    coins = [
        _Coin(str(n), hashlib.sha256(f"tx{seed}{n}".encode()).hexdigest(), n, 10**8, b"")
        for n in range(inputs)
    ]
    scripts = [bytes([0]) * length for length in outputs]
    tx = _signed(family, coins, [(s, 1000 + i) for i, s in enumerate(scripts)], keys)
    full = len(tx.serialize())
    stripped = Transaction(tx.version, [_no_witness(i) for i in tx.vin], tx.vout, tx.locktime)
    base = len(stripped.serialize()) if family is Family.LTC else full
    actual = -(-(base * 3 + full) // 4)
    estimate = _vsize(inputs, scripts, segwit=family is Family.LTC)
    assert actual <= estimate <= actual + inputs  # at most a byte of signature per input


def _no_witness(vin: Any) -> Any:
    return TransactionInput(vin.txid, vin.vout, vin.script_sig, sequence=vin.sequence)


def sender(**kw: Any) -> UtxoSender:
    rpc = RpcClient("LTC", [closed_port_url()], timeout_seconds=1)

    async def keys() -> HDRoot:
        return ROOT

    return UtxoSender("LTC", rpc, cast(Any, None), keys, network=Network.REGTEST, **kw)


def payment(index: int, **kw: Any) -> SweepInput:
    fields: dict[str, Any] = {
        "payment_id": f"p{index}",
        "coin": "LTC",
        "address": ROOT.address(Family.LTC, index, Network.REGTEST),
        "derivation_index": index,
        "received": 10**7,
        "commission": 10**5,
        "merchant_address": PLATFORM,
    }
    return SweepInput(**{**fields, **kw})


@pytest.mark.parametrize("chain", ["ETH", "SOL", "NOPE"])
def test_only_utxo_chains_have_this_sender(chain: str) -> None:
    with pytest.raises(ValueError, match="not a UTXO chain"):
        UtxoSender(chain, cast(Any, None), cast(Any, None), cast(Any, None))


async def test_a_merchant_or_platform_address_of_another_network_is_refused() -> None:
    mainnet = ROOT.address(Family.LTC, 9)
    with pytest.raises(InvalidAddress, match="Litecoin regtest"):
        await sender().sign((payment(0, merchant_address=mainnet),), PLATFORM)
    with pytest.raises(InvalidAddress, match="Litecoin regtest"):
        await sender().sign((payment(0),), mainnet)


async def test_a_payment_whose_index_is_not_its_addresss_key_is_not_signed_for() -> None:
    # The payment's address at index 0, claimed to be index 1; or written for mainnet.
    with pytest.raises(NotSweepable, match="not the key of its address"):
        await sender().sign((payment(0, derivation_index=1),), PLATFORM)
    wrong_network = payment(0, address=ROOT.address(Family.LTC, 0, Network.TESTNET))
    with pytest.raises(InvalidAddress):
        await sender().sign((wrong_network,), PLATFORM)


async def test_a_batch_is_bounded_and_names_each_payment_once() -> None:
    with pytest.raises(ValueError, match="1 to 2"):
        await sender(batch_limit=2).sign(tuple(payment(i) for i in range(3)), PLATFORM)
    with pytest.raises(ValueError, match="twice"):
        await sender().sign((payment(0), payment(0)), PLATFORM)


def test_output_scripts_are_the_ones_litecoind_reports() -> None:
    # getaddressinfo on a Litecoin Core 0.21 regtest wallet.
    assert (
        output_script(Family.LTC, "mnydPgGAyxkMFZcGk6cp563DcCo8jYEL9i", Network.REGTEST).hex()
        == "76a91451d454fd70802a74927fcf68095c427cb6a3468988ac"
    )
    assert (
        output_script(Family.LTC, "QaBQpcTboQUGUXMwrB5TcLZsyEpyUc6KW6", Network.REGTEST).hex()
        == "a91494ebfd9f8aed01af93647fb6730adbbef9d2408287"
    )
    assert (
        output_script(Family.LTC, PLATFORM, Network.REGTEST).hex()
        == "00145c88093b6a3e69f7cfe5c4ec38edd226292db3e9"
    )
    # BIP86's first Taproot address of the test mnemonic.
    taproot = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    assert output_script(Family.BTC, taproot).hex() == (
        "5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c"
    )


async def test_a_sender_is_opened_only_with_a_platform_wallet_of_its_network() -> None:
    env = {"KEEL_COINPAY_LTC_RPC_URLS": closed_port_url(), "KEEL_COINPAY_LTC_NETWORK": "regtest"}
    ltc = config.load(env).chain("LTC")
    keys = cast(Any, None)
    with pytest.raises(
        InvalidChainConfig, match="platform wallet is not an address of its regtest"
    ):
        open_utxo_sender(ltc, cast(Any, None), keys, platform_address=ROOT.address(Family.LTC, 0))
    with pytest.raises(InvalidChainConfig, match="no RPC URL"):
        open_utxo_sender(config.load({}).chain("LTC"), cast(Any, None), keys, platform_address="x")
    opened = open_utxo_sender(ltc, cast(Any, None), keys, platform_address=PLATFORM)
    assert (opened.chain, opened.network, opened.batch_limit) == ("LTC", Network.REGTEST, 50)
    await opened.aclose()


# Legacy and Bitcoin Cash signatures -------------------------------------------------------------

# BIP143's native P2WPKH example: the unsigned transaction, its second input's script code and
# amount (6 BTC), and the digest that input signs with SIGHASH_ALL.
BIP143_TX = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffff"
    "ffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202c"
    "b206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a914"
    "3bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
BIP143_CODE = "76a9141d0f172a0ecb48aee1be1f2687d2963ae33f71a188ac"
BIP143_DIGEST = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"


def test_the_forkid_digest_is_bip143s_with_its_own_hash_type() -> None:
    tx = Transaction.parse(bytes.fromhex(BIP143_TX))
    code = Script(bytes.fromhex(BIP143_CODE))
    assert forkid_digest(tx, 1, code, 600_000_000, hash_type=1).hex() == BIP143_DIGEST
    # The only difference Bitcoin Cash makes is the hash type committed to: 0x41.
    assert forkid_digest(tx, 1, code, 600_000_000) != bytes.fromhex(BIP143_DIGEST)


@given(
    inputs=st.integers(min_value=1, max_value=5),
    amounts=st.lists(st.integers(min_value=1, max_value=2**50), min_size=1, max_size=4),
    index=st.integers(min_value=0, max_value=4),
    seed=st.binary(min_size=4, max_size=8),
)
def test_the_forkid_digest_agrees_with_embits_bip143_at_hash_type_1(
    inputs: int, amounts: list[int], index: int, seed: bytes
) -> None:
    tx = Transaction(
        2,
        [
            TransactionInput(hashlib.sha256(seed + bytes([n])).digest(), n, sequence=0xFFFFFFFF - n)
            for n in range(inputs)
        ],
        [TransactionOutput(a, Script(bytes([0x51]))) for a in amounts],
        7,
    )
    code = Script(bytes.fromhex(BIP143_CODE))
    at = index % inputs
    assert forkid_digest(tx, at, code, amounts[0], hash_type=1) == tx.sighash_segwit(
        at, code, amounts[0]
    )


def test_bch_inputs_carry_a_forkid_signature_over_the_amount_and_doge_a_legacy_one() -> None:
    key = ec.PrivateKey(hashlib.sha256(b"k").digest())
    coin = _Coin("p", "11" * 32, 0, 5 * 10**8, b"")
    outputs = [(bytes.fromhex(BIP143_CODE), 4 * 10**8)]
    for family, hash_type in ((Family.BCH, 0x41), (Family.DOGE, 0x01)):
        tx = _signed(family, [coin], outputs, {"p": key})
        [spent] = tx.vin
        assert not spent.witness.items
        assert spent.sequence == 0xFFFFFFFF
        signature, public = _pushes(spent.script_sig.data)
        assert signature[-1] == hash_type
        assert public == key.get_public_key().sec()
        code = p2pkh(key.get_public_key())
        if family is Family.BCH:
            digest = forkid_digest(tx, 0, code, coin.amount)
            other = forkid_digest(tx, 0, code, coin.amount + 1)  # the amount is signed
            assert not key.get_public_key().verify(ec.Signature.parse(signature[:-1]), other)
        else:
            digest = tx.sighash_legacy(0, code)
            assert tx.version == 1
        assert key.get_public_key().verify(ec.Signature.parse(signature[:-1]), digest)


def _pushes(data: bytes) -> list[bytes]:
    found, at = [], 0
    while at < len(data):
        length = data[at]
        found.append(data[at + 1 : at + 1 + length])
        at += 1 + length
    return found
