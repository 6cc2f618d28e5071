"""HDRoot derives the published addresses and keys for every family."""

from __future__ import annotations

import pytest
from bip_utils import (
    AdaShelleyAddrEncoder,
    Base58Encoder,
    Bip32KeyData,
    Bip39SeedGenerator,
    Bip44Changes,
    CardanoIcarusBip32,
    CardanoIcarusSeedGenerator,
    CardanoShelley,
    Cip1852,
    Cip1852Coins,
    Ed25519KholawPrivateKey,
    WifDecoder,
)
from bip_utils.bip.conf.bip44 import Bip44Conf
from bip_utils.bip.conf.bip84 import Bip84Conf

from keel.coinpay.wallets import MAX_INDEX, Family, HDRoot, path_for
from keel.coinpay.wallets.cardano import icarus_master_key

INDEX_ZERO = {
    Family.BTC: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
    Family.LTC: "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh",
    Family.BCH: "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6",
    Family.DOGE: "DBus3bamQjgJULBJtYXpEzDWQRwF5iwxgC",
    Family.EVM: "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
    Family.SOL: "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk",
    Family.XRP: "rHsMGQEkVNJmpGWs8XUBoTBiAAbwxZN5v3",
    Family.ADA: (
        "addr1qy8ac7qqy0vtulyl7wntmsxc6wex80gvcyjy33qffrhm7sh927ysx5sftuw0dlft05dz3c7revpf7jx0xnlc"
        "jz3g69mq4afdhv"
    ),
}

# bip-utils coin configurations, used to re-derive each full path from scratch.
SECP_AND_SOL_CONF = {
    Family.BTC: Bip84Conf.BitcoinMainNet,
    Family.LTC: Bip84Conf.LitecoinMainNet,
    Family.BCH: Bip44Conf.BitcoinCashMainNet,
    Family.DOGE: Bip44Conf.DogecoinMainNet,
    Family.EVM: Bip44Conf.Ethereum,
    Family.SOL: Bip44Conf.Solana,
    Family.XRP: Bip44Conf.Ripple,
}


@pytest.mark.parametrize("family", list(Family))
def test_index_zero_matches_published_vector(abandon_root: HDRoot, family: Family) -> None:
    assert abandon_root.address(family, 0) == INDEX_ZERO[family]


def test_btc_index_one_matches_bip84_vector(abandon_root: HDRoot) -> None:
    assert abandon_root.address(Family.BTC, 1) == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"


def test_btc_private_key_matches_bip84_vector(abandon_root: HDRoot) -> None:
    wif = "KyZpNDKnfs94vbrwhJneDi77V6jF64PWPF8x5cdJb8ifgg2DUc9d"  # BIP84 m/84'/0'/0'/0/0
    key, _ = WifDecoder.Decode(wif, net_ver=b"\x80")
    assert abandon_root.private_key(Family.BTC, 0) == key


def test_evm_index_zero_private_key_matches_widely_published_key(abandon_root: HDRoot) -> None:
    expected = "1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727"
    assert abandon_root.private_key(Family.EVM, 0).hex() == expected


@pytest.mark.parametrize("index", [0, 1, 2])
def test_evm_address_is_keccak_of_public_key_computed_without_bip_utils(
    abandon_root: HDRoot, index: int
) -> None:
    coincurve = pytest.importorskip("coincurve")
    keccak = pytest.importorskip("Crypto.Hash.keccak")
    public = coincurve.PrivateKey(abandon_root.private_key(Family.EVM, index)).public_key
    digest = keccak.new(digest_bits=256, data=public.format(compressed=False)[1:]).digest()
    assert abandon_root.address(Family.EVM, index).lower() == "0x" + digest[-20:].hex()


def test_evm_index_one_matches_second_metamask_account(abandon_root: HDRoot) -> None:
    assert abandon_root.address(Family.EVM, 1) == "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_sol_address_is_base58_of_nacl_public_key_of_private_key(
    abandon_root: HDRoot, index: int
) -> None:
    signing = pytest.importorskip("nacl.signing")
    seed = abandon_root.private_key(Family.SOL, index)
    public = bytes(signing.SigningKey(seed).verify_key)
    assert abandon_root.address(Family.SOL, index) == Base58Encoder.Encode(public)


@pytest.mark.parametrize("index", [0, 1, 7, 1000])
def test_ada_address_matches_bip_utils_cardano_shelley_pipeline(
    abandon: str, abandon_root: HDRoot, index: int
) -> None:
    entropy = CardanoIcarusSeedGenerator(abandon).Generate()
    account = Cip1852.FromSeed(entropy, Cip1852Coins.CARDANO_ICARUS).Purpose().Coin().Account(0)
    shelley = CardanoShelley.FromCip1852Object(account).Change(Bip44Changes.CHAIN_EXT)
    expected = shelley.AddressIndex(index).PublicKeys().ToAddress()
    assert abandon_root.address(Family.ADA, index) == expected


def test_ada_private_key_is_the_64_byte_extended_payment_key(
    abandon: str, abandon_root: HDRoot
) -> None:
    key = abandon_root.private_key(Family.ADA, 3)
    assert len(key) == 64
    staking_root = CardanoIcarusBip32.FromSeed(CardanoIcarusSeedGenerator(abandon).Generate())
    staking = staking_root.DerivePath("m/1852'/1815'/0'/2/0").PublicKey().KeyObject()
    public = Ed25519KholawPrivateKey.FromBytes(key).PublicKey()
    address = AdaShelleyAddrEncoder.EncodeKey(public, pub_skey=staking)
    assert address == abandon_root.address(Family.ADA, 3)


@pytest.mark.parametrize("family", [f for f in Family if f is not Family.ADA])
@pytest.mark.parametrize("index", [0, 5, MAX_INDEX])
def test_address_equals_fresh_derivation_of_path_for(
    abandon: str, abandon_root: HDRoot, family: Family, index: int
) -> None:
    conf = SECP_AND_SOL_CONF[family]
    seed = Bip39SeedGenerator(abandon).Generate()
    node = conf.Bip32Class().FromSeed(seed).DerivePath(path_for(family, index))
    expected = conf.AddrClass().EncodeKey(node.PublicKey().KeyObject(), **conf.AddrParams())
    assert abandon_root.address(family, index) == expected
    assert abandon_root.private_key(family, index) == node.PrivateKey().Raw().ToBytes()


def test_ada_private_key_equals_fresh_derivation_of_path_for(
    abandon: str, abandon_root: HDRoot
) -> None:
    root = CardanoIcarusBip32.FromSeed(CardanoIcarusSeedGenerator(abandon).Generate())
    node = root.DerivePath(path_for(Family.ADA, 9))
    assert abandon_root.private_key(Family.ADA, 9) == node.PrivateKey().Raw().ToBytes()


@pytest.mark.parametrize("family", list(Family))
def test_indexes_0_to_49_give_distinct_addresses(abandon_root: HDRoot, family: Family) -> None:
    addresses = {abandon_root.address(family, index) for index in range(50)}
    assert len(addresses) == 50


def test_path_for_shows_each_family_scheme() -> None:
    assert path_for(Family.BTC, 3) == "m/84'/0'/0'/0/3"
    assert path_for(Family.LTC, 3) == "m/84'/2'/0'/0/3"
    assert path_for(Family.BCH, 3) == "m/44'/145'/0'/0/3"
    assert path_for(Family.DOGE, 3) == "m/44'/3'/0'/0/3"
    assert path_for(Family.EVM, 3) == "m/44'/60'/0'/0/3"
    assert path_for(Family.SOL, 3) == "m/44'/501'/3'/0'"
    assert path_for(Family.XRP, 3) == "m/44'/144'/0'/0/3"
    assert path_for(Family.ADA, 3) == "m/1852'/1815'/0'/0/3"


def test_passphrase_changes_every_family_including_ada(abandon: str) -> None:
    # bip-utils' Icarus generator ignores passphrases; ours must not.
    protected = HDRoot.from_mnemonic(abandon, passphrase="TREZOR")
    for family in Family:
        assert protected.address(family, 0) != INDEX_ZERO[family], family


CIP3_PHRASE = (
    "eight country switch draw meat scout mystery blade tip drift useless good keep usage title"
)


@pytest.mark.parametrize(
    ("passphrase", "master_key"),
    [
        (
            "",
            "c065afd2832cd8b087c4d9ab7011f481ee1e0721e78ea5dd609f3ab3f156d245"
            "d176bd8fd4ec60b4731c3918a2a72a0226c0cd119ec35b47e4d55884667f552a"
            "23f7fdcd4a10c6cd2c7393ac61d877873e248f417634aa3d812af327ffe9d620",
        ),
        (
            "foo",
            "70531039904019351e1afb361cd1b312a4d0565d4ff9f8062d38acf4b15cce41"
            "d7b5738d9c893feea55512a3004acb0d222c35d3e3d5cde943a15a9824cbac59"
            "443cf67e589614076ba01e354b1a432e0e6db3b59e37fc56b5fb0222970a010e",
        ),
    ],
)
def test_icarus_master_key_matches_cip3_vectors(passphrase: str, master_key: str) -> None:
    entropy = CardanoIcarusSeedGenerator(CIP3_PHRASE).Generate()
    assert icarus_master_key(entropy, passphrase).hex() == master_key


def test_passphrase_ada_keys_derive_from_the_cip3_master_key(abandon: str) -> None:
    master = icarus_master_key(CardanoIcarusSeedGenerator(abandon).Generate(), "foo")
    root = CardanoIcarusBip32.FromPrivateKey(master[:64], Bip32KeyData(chain_code=master[64:]))
    node = root.DerivePath(path_for(Family.ADA, 0))
    protected = HDRoot.from_mnemonic(abandon, passphrase="foo")
    assert protected.private_key(Family.ADA, 0) == node.PrivateKey().Raw().ToBytes()
