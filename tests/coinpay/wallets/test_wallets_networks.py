"""UTXO chains on their test networks: paths with coin type 1, each network's own encoding, and
no address of one network accepted on another (mainnet results are the vectors elsewhere)."""

from __future__ import annotations

import pytest
from bip_utils import (
    Base58Decoder,
    Base58Encoder,
    BchBech32Decoder,
    SegwitBech32Encoder,
)
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.errors import InvalidAddress
from keel.coinpay.wallets import (
    UTXO_FAMILIES,
    Family,
    HDRoot,
    Network,
    cached_prefix,
    path_for,
    validate_address,
)
from keel.coinpay.wallets.networks import NODE_CHAINS, check_network, utxo_network

TEST_NETWORKS = (Network.TESTNET, Network.REGTEST)
ACCOUNT_FAMILIES = sorted(set(Family) - UTXO_FAMILIES)

# Litecoin Core 0.21 in regtest, `deriveaddresses` of wpkh(tpub/0/*) and pkh(tpub/0/*) with the
# tpubs of m/84'/1'/0' and m/44'/1'/0' of `abandon ×11 about`.
LTC_REGTEST_WPKH = (
    "rltc1q6rz28mcfaxtmd6v789l9rrlrusdprr9puuzgkg",
    "rltc1qd7spv5q28348xl4myc8zmh983w5jx32cwn4h9f",
)
REGTEST_PKH = ("mkpZhYtJu2r87Js3pDiWJDmPte2NRZ8bJV", "mzpbWabUQm1w8ijuJnAof5eiSTep27deVH")
# Addresses a Litecoin Core regtest wallet handed out (getnewaddress legacy, p2sh-segwit, bech32).
LTC_NODE_WRITTEN = (
    "mnydPgGAyxkMFZcGk6cp563DcCo8jYEL9i",
    "QaBQpcTboQUGUXMwrB5TcLZsyEpyUc6KW6",
    "rltc1qtjyqjwm28e5l0nl9cnkr3mwjyc5jmvlfyexkzs",
)


@pytest.mark.parametrize("index", [0, 1])
def test_litecoin_regtest_addresses_are_the_ones_litecoin_core_derives(
    abandon_root: HDRoot, index: int
) -> None:
    assert abandon_root.address(Family.LTC, index, Network.REGTEST) == LTC_REGTEST_WPKH[index]
    assert abandon_root.address(Family.DOGE, index, Network.REGTEST) == REGTEST_PKH[index]


def test_bitcoin_testnet_follows_bip84_with_coin_type_1(abandon_root: HDRoot) -> None:
    # The first receive address of BIP84's test mnemonic on testnet, as wallets show it.
    tb = "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
    assert abandon_root.address(Family.BTC, 0, Network.TESTNET) == tb
    # Same key, regtest's prefix.
    assert abandon_root.address(Family.BTC, 0, Network.REGTEST).startswith("bcrt1q6rz28mcf")
    assert path_for(Family.BTC, 0, Network.TESTNET) == "m/84'/1'/0'/0/0"


def test_bitcoin_cash_test_networks_write_the_same_key_as_cashaddr(abandon_root: HDRoot) -> None:
    hash160 = bytes(Base58Decoder.CheckDecode(REGTEST_PKH[0]))[1:]  # m/44'/1'/0'/0/0
    for network, prefix in ((Network.TESTNET, "bchtest"), (Network.REGTEST, "bchreg")):
        address = abandon_root.address(Family.BCH, 0, network)
        assert address.startswith(f"{prefix}:q")
        assert bytes(BchBech32Decoder.Decode(prefix, address)[1]) == hash160


@pytest.mark.parametrize("family", sorted(UTXO_FAMILIES))
@pytest.mark.parametrize("network", TEST_NETWORKS)
def test_a_test_network_never_derives_on_a_mainnet_path(
    abandon_root: HDRoot, family: Family, network: Network
) -> None:
    mainnet, test = cached_prefix(family), cached_prefix(family, network)
    assert test.split("/")[2] == "1'"
    assert mainnet.split("/")[2] != "1'"
    assert test.replace("/1'/", "/", 1) == mainnet.replace(mainnet.split("/")[2] + "/", "", 1)
    assert abandon_root.private_key(family, 3, network) != abandon_root.private_key(family, 3)


@pytest.mark.parametrize("family", ACCOUNT_FAMILIES)
@pytest.mark.parametrize("network", TEST_NETWORKS)
def test_account_families_have_no_test_network_here(
    abandon_root: HDRoot, family: Family, network: Network
) -> None:
    with pytest.raises(ValueError, match="only UTXO chains"):
        abandon_root.address(family, 0, network)
    with pytest.raises(ValueError, match="only UTXO chains"):
        validate_address(family, abandon_root.address(family, 0), network)
    with pytest.raises(ValueError, match="only UTXO chains"):
        path_for(family, 0, network)
    assert check_network(family, Network.MAINNET) is Network.MAINNET


def test_every_network_other_than_mainnet_uses_coin_type_1() -> None:
    for family in UTXO_FAMILIES:
        assert utxo_network(family, Network.MAINNET).coin_type != 1
        assert {utxo_network(family, n).coin_type for n in TEST_NETWORKS} == {1}


@pytest.mark.parametrize("address", LTC_NODE_WRITTEN)
def test_addresses_litecoin_core_writes_in_regtest_are_accepted_as_written(address: str) -> None:
    assert validate_address(Family.LTC, address, Network.REGTEST) == address
    with pytest.raises(InvalidAddress, match="Litecoin address"):
        validate_address(Family.LTC, address)
    if address.startswith("rltc1"):
        with pytest.raises(InvalidAddress, match="Litecoin testnet address"):
            validate_address(Family.LTC, address, Network.TESTNET)
    else:  # testnet and regtest share their base58 versions, as in Litecoin Core
        assert validate_address(Family.LTC, address, Network.TESTNET) == address


def test_litecoin_test_networks_rewrite_bitcoin_style_p2sh_to_their_own() -> None:
    script_hash = bytes(Base58Decoder.CheckDecode(LTC_NODE_WRITTEN[1]))[1:]
    bitcoin_style = Base58Encoder.CheckEncode(b"\xc4" + script_hash)  # 2…
    assert bitcoin_style.startswith("2")
    assert validate_address(Family.LTC, bitcoin_style, Network.REGTEST) == LTC_NODE_WRITTEN[1]


def test_a_mainnet_payout_address_is_refused_on_regtest_naming_the_network(
    abandon_root: HDRoot,
) -> None:
    with pytest.raises(InvalidAddress, match=r"not a valid Litecoin regtest address.*rltc1q"):
        validate_address(Family.LTC, abandon_root.address(Family.LTC, 0), Network.REGTEST)


def test_node_chain_names_cover_the_three_networks() -> None:
    assert set(NODE_CHAINS.values()) == set(Network)
    assert NODE_CHAINS["main"] is Network.MAINNET
    assert NODE_CHAINS["regtest"] is Network.REGTEST


@given(
    family=st.sampled_from(sorted(UTXO_FAMILIES)),
    network=st.sampled_from(list(Network)),
    index=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_a_derived_address_is_valid_on_its_network_and_on_no_other(
    abandon_root: HDRoot, family: Family, network: Network, index: int
) -> None:
    address = abandon_root.address(family, index, network)
    assert validate_address(family, address, network) == address
    for other in set(Network) - {network}:
        with pytest.raises(InvalidAddress):
            validate_address(family, address, other)


def _forms(family: Family, network: Network, payload: bytes) -> list[str]:
    """Every address of ``family`` on ``network`` for a 20-byte hash."""
    params = utxo_network(family, network)
    forms = [Base58Encoder.CheckEncode(v + payload) for v in (params.p2pkh, params.p2sh)]
    if params.segwit_hrp is not None:
        forms.append(SegwitBech32Encoder.Encode(params.segwit_hrp, 0, payload))
    return forms


@given(
    family=st.sampled_from(sorted(UTXO_FAMILIES)),
    network=st.sampled_from(list(Network)),
    payload=st.binary(min_size=20, max_size=20).filter(any),
)
def test_any_hash_written_for_a_network_is_accepted_there_and_not_on_mainnet_or_back(
    family: Family, network: Network, payload: bytes
) -> None:
    for address in _forms(family, network, payload):
        normalised = validate_address(family, address, network)
        cashaddr = utxo_network(family, network).cashaddr_hrp
        if cashaddr is None:
            assert normalised == address
        else:  # BCH's legacy forms become CashAddr
            assert normalised.startswith(f"{cashaddr}:")
        if network is not Network.MAINNET:
            with pytest.raises(InvalidAddress):
                validate_address(family, address, Network.MAINNET)
    if network is not Network.MAINNET:
        for address in _forms(family, Network.MAINNET, payload):
            with pytest.raises(InvalidAddress):
                validate_address(family, address, network)
