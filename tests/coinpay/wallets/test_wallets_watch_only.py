"""WatchOnlyKey derives the same receive addresses as the wallet that exported the key."""

from __future__ import annotations

import pytest
from bip_utils import (
    Base58Decoder,
    Base58Encoder,
    Bip32KeyNetVersions,
    Bip32Slip10Secp256k1,
    Bip39SeedGenerator,
)

from keel.coinpay.errors import IndexExhausted, InvalidExtendedKey
from keel.coinpay.wallets import MAX_INDEX, Family, HDRoot, WatchOnlyKey

BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf"
    "31mGDtKsAYz2oz2AGutZYs"
)

# SLIP-132 version bytes (public, private).
XPUB = ("0488b21e", "0488ade4")
YPUB = ("049d7cb2", "049d7878")
ZPUB = ("04b24746", "04b2430c")
LTUB = ("019da462", "019d9cfe")
MTUB = ("01b26ef6", "01b26792")
DGUB = ("02facafd", "02fac398")


def account_key(
    mnemonic: str, path: str, versions: tuple[str, str], *, private: bool = False
) -> str:
    """Serialise the account key at ``path`` with the given SLIP-132 versions."""
    net = Bip32KeyNetVersions(bytes.fromhex(versions[0]), bytes.fromhex(versions[1]))
    seed = Bip39SeedGenerator(mnemonic).Generate()
    node = Bip32Slip10Secp256k1.FromSeed(seed, net).DerivePath(path)
    return str((node.PrivateKey() if private else node.PublicKey()).ToExtended())


def test_bip84_zpub_gives_the_spec_addresses() -> None:
    key = WatchOnlyKey.parse(Family.BTC, BIP84_ZPUB)
    assert key.address(0) == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert key.address(1) == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"


@pytest.mark.parametrize(
    ("family", "path", "versions"),
    [
        (Family.BTC, "m/84'/0'/0'", ZPUB),
        (Family.LTC, "m/84'/2'/0'", ZPUB),
        (Family.BCH, "m/44'/145'/0'", XPUB),
        (Family.DOGE, "m/44'/3'/0'", DGUB),
        (Family.DOGE, "m/44'/3'/0'", XPUB),
    ],
)
def test_watch_only_matches_custodial_derivation(
    abandon: str, abandon_root: HDRoot, family: Family, path: str, versions: tuple[str, str]
) -> None:
    key = WatchOnlyKey.parse(family, account_key(abandon, path, versions))
    for index in (0, 1, 2, 19, 1000, MAX_INDEX):
        assert key.address(index) == abandon_root.address(family, index)


@pytest.mark.parametrize(
    ("family", "path", "versions", "first_address"),
    [
        # Well-known first receive addresses of the abandon×11 about mnemonic.
        (Family.BTC, "m/49'/0'/0'", YPUB, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"),
        (Family.BTC, "m/44'/0'/0'", XPUB, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        (Family.LTC, "m/49'/2'/0'", MTUB, "M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM"),
        (Family.LTC, "m/49'/2'/0'", YPUB, "M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM"),
        (Family.LTC, "m/44'/2'/0'", LTUB, "LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez"),
        (Family.LTC, "m/44'/2'/0'", XPUB, "LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez"),
    ],
)
def test_key_version_decides_the_address_type(
    abandon: str, family: Family, path: str, versions: tuple[str, str], first_address: str
) -> None:
    key = WatchOnlyKey.parse(family, account_key(abandon, path, versions))
    assert key.address(0) == first_address


def test_properties_keep_the_key_for_storage() -> None:
    key = WatchOnlyKey.parse(Family.BTC, f"  {BIP84_ZPUB}\n")
    assert key.key == BIP84_ZPUB
    assert key.family is Family.BTC
    assert key.version == "zpub"
    assert len(key.fingerprint) == 8
    assert int(key.fingerprint, 16) >= 0
    assert key.fingerprint in repr(key)


@pytest.mark.parametrize("family", [Family.EVM, Family.SOL, Family.XRP, Family.ADA])
def test_non_utxo_families_are_refused(family: Family) -> None:
    with pytest.raises(InvalidExtendedKey, match="watch-only is supported for UTXO chains"):
        WatchOnlyKey.parse(family, BIP84_ZPUB)


@pytest.mark.parametrize("versions", [ZPUB, XPUB, YPUB, DGUB])
def test_private_extended_keys_are_refused_with_a_warning(
    abandon: str, versions: tuple[str, str]
) -> None:
    private = account_key(abandon, "m/84'/0'/0'", versions, private=True)
    with pytest.raises(InvalidExtendedKey, match="never paste a private key") as caught:
        WatchOnlyKey.parse(Family.BTC, private)
    assert private not in str(caught.value)


def test_private_key_data_under_a_public_version_is_refused(abandon: str) -> None:
    private = account_key(abandon, "m/84'/0'/0'", ZPUB, private=True)
    raw = bytearray(Base58Decoder.CheckDecode(private))
    raw[:4] = bytes.fromhex(ZPUB[0])
    with pytest.raises(InvalidExtendedKey, match="private"):
        WatchOnlyKey.parse(Family.BTC, Base58Encoder.CheckEncode(bytes(raw)))


@pytest.mark.parametrize(
    ("family", "versions"),
    [(Family.BCH, ZPUB), (Family.BTC, DGUB), (Family.BTC, LTUB), (Family.DOGE, ZPUB)],
)
def test_versions_the_family_does_not_use_are_refused(
    abandon: str, family: Family, versions: tuple[str, str]
) -> None:
    with pytest.raises(InvalidExtendedKey, match=f"not used by {family}"):
        WatchOnlyKey.parse(family, account_key(abandon, "m/44'/0'/0'", versions))


def test_change_level_key_is_refused(abandon: str) -> None:
    with pytest.raises(InvalidExtendedKey, match="depth 4"):
        WatchOnlyKey.parse(Family.BTC, account_key(abandon, "m/84'/0'/0'/0", ZPUB))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zpub",
        "not a key",
        BIP84_ZPUB[:-1] + "t",
        BIP84_ZPUB + "x",
        Base58Encoder.CheckEncode(b"x"),
    ],
)
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidExtendedKey, match="not a valid BTC extended public key"):
        WatchOnlyKey.parse(Family.BTC, text)


def test_key_that_is_not_a_curve_point_is_refused() -> None:
    raw = bytearray(Base58Decoder.CheckDecode(BIP84_ZPUB))
    raw[45:] = b"\x02" + b"\xff" * 32  # x beyond the field prime: no such point
    with pytest.raises(InvalidExtendedKey, match="not a curve point"):
        WatchOnlyKey.parse(Family.BTC, Base58Encoder.CheckEncode(bytes(raw)))


def test_index_bounds() -> None:
    key = WatchOnlyKey.parse(Family.BTC, BIP84_ZPUB)
    with pytest.raises(IndexExhausted):
        key.address(MAX_INDEX + 1)
    with pytest.raises(ValueError, match=">= 0"):
        key.address(-1)
