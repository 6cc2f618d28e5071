"""script_address is output_script's inverse: an output's script read back as the address a
payment was created with, on every UTXO family and network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.wallets import UTXO_FAMILIES, Family, Network, output_script, script_address
from keel.coinpay.wallets.address_validation import validate_address

FAMILIES = sorted(UTXO_FAMILIES)
SEGWIT = [Family.BTC, Family.LTC]
TAPROOT = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"  # BIP350's vector


def scripts(family: Family) -> st.SearchStrategy[bytes]:
    h20 = st.binary(min_size=20, max_size=20).filter(any)
    kinds = [
        h20.map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
        h20.map(lambda h: b"\xa9\x14" + h + b"\x87"),
    ]
    if family in SEGWIT:
        kinds += [
            h20.map(lambda h: b"\x00\x14" + h),
            st.binary(min_size=32, max_size=32).filter(any).map(lambda h: b"\x00\x20" + h),
        ]
    return st.one_of(kinds)


@given(data=st.data(), family=st.sampled_from(FAMILIES), network=st.sampled_from(list(Network)))
def test_a_script_reads_back_as_the_canonical_address_that_pays_it(
    data: st.DataObject, family: Family, network: Network
) -> None:
    script = data.draw(scripts(family))
    address = script_address(family, script, network)
    assert address is not None
    assert validate_address(family, address, network) == address
    assert output_script(family, address, network) == script


@pytest.mark.parametrize(
    ("family", "network", "address"),
    [
        (Family.BTC, Network.MAINNET, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        (Family.BTC, Network.MAINNET, TAPROOT),
        (Family.BTC, Network.REGTEST, "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"),
        (Family.LTC, Network.MAINNET, "MTf4tP1TCNBn8dNkyxeBVoPrFCcVzxJvvh"),
        (Family.BCH, Network.MAINNET, "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"),
    ],
)
def test_known_addresses_round_trip(family: Family, network: Network, address: str) -> None:
    assert script_address(family, output_script(family, address, network), network) == address


@pytest.mark.parametrize(
    "script",
    [
        b"",
        b"\x6a\x04abcd",  # OP_RETURN
        b"\x21" + b"\x02" * 33 + b"\xac",  # P2PK
        b"\x52\x20" + b"\x01" * 32,  # witness v2: no spending rules yet
        b"\x00\x15" + b"\x01" * 21,  # v0 with a 21-byte program
        b"\x00\x14" + b"\x01" * 19,  # a push longer than the script
    ],
)
def test_scripts_no_address_stands_for_give_none(script: bytes) -> None:
    assert script_address(Family.BTC, script, Network.MAINNET) is None
