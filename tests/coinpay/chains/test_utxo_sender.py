"""UtxoSender without a node: the fee split is exact, the size estimate bounds the signed
transaction, and a batch with an address of another network, or a key that is not its
address's, is refused before anything is asked of a node. (On litecoind regtest, end to end:
tests/coinpay/chains/test_nodes_ltc_live_flow.py.)"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import pytest
from embit import ec
from embit.transaction import Transaction, TransactionInput
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
)
def test_the_size_estimate_bounds_the_signed_transaction(
    inputs: int, outputs: list[int], seed: int
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
    tx = _signed(coins, [(s, 1000 + i) for i, s in enumerate(scripts)], keys)
    full = len(tx.serialize())
    stripped = Transaction(tx.version, [_no_witness(i) for i in tx.vin], tx.vout, tx.locktime)
    base = len(stripped.serialize())
    actual = -(-(base * 3 + full) // 4)
    estimate = _vsize(inputs, scripts)
    assert actual <= estimate <= actual + inputs  # at most a byte of signature per input


def _no_witness(vin: Any) -> Any:
    return TransactionInput(vin.txid, vin.vout, sequence=vin.sequence)


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


@pytest.mark.parametrize("chain", ["DOGE", "BCH", "ETH", "NOPE"])
def test_only_p2wpkh_chains_have_this_sender(chain: str) -> None:
    with pytest.raises(ValueError, match="BTC and LTC"):
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
