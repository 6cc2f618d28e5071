"""validate_address accepts each chain's mainnet forms, normalises them, refuses the rest."""

from __future__ import annotations

import cbor2
import pytest
from bip_utils import (
    AdaByronIcarusAddrEncoder,
    Base58Decoder,
    Base58Encoder,
    Bech32Encoder,
    Bip44Changes,
    CardanoIcarusSeedGenerator,
    Cip1852,
    Cip1852Coins,
    P2SHAddrEncoder,
    P2TRAddrEncoder,
    P2WPKHAddrEncoder,
)
from bip_utils.utils.crypto import Blake2b224, Crc32
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coinpay.errors import InvalidAddress
from keel.coinpay.wallets import MAX_INDEX, Family, HDRoot, validate_address

BIP84_PUBKEY = bytes.fromhex("0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c")
KEYHASH = bytes(range(1, 29))  # any non-zero 28-byte Cardano key hash


def ada_bech32(header: int, body: bytes, hrp: str = "addr") -> str:
    return str(Bech32Encoder.Encode(hrp, bytes([header]) + body))


def byron(abandon: str, *, network_magic: int | None = None) -> str:
    """A Byron Icarus address of the test mnemonic, optionally with a testnet magic."""
    entropy = CardanoIcarusSeedGenerator(abandon).Generate()
    node = (
        Cip1852.FromSeed(entropy, Cip1852Coins.CARDANO_ICARUS)
        .Purpose()
        .Coin()
        .Account(0)
        .Change(Bip44Changes.CHAIN_EXT)
        .AddressIndex(0)
        .Bip32Object()
    )
    address = str(
        AdaByronIcarusAddrEncoder.EncodeKey(
            node.PublicKey().KeyObject(), chain_code=node.ChainCode()
        )
    )
    if network_magic is None:
        return address
    tagged = cbor2.loads(Base58Decoder.Decode(address))[0]
    root, _, kind = cbor2.loads(tagged.value)
    payload = cbor2.dumps([root, {2: cbor2.dumps(network_magic)}, kind])
    return str(
        Base58Encoder.Encode(
            cbor2.dumps([cbor2.CBORTag(24, payload), Crc32.QuickIntDigest(payload)])
        )
    )


@pytest.mark.parametrize(
    ("family", "given_address", "normalised"),
    [
        (Family.BTC, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", None),
        (
            Family.BTC,
            "  BC1QCR8TE4KR609GCAWUTMRZA0J4XV80JY8Z306FYU\n",
            "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
        ),
        (Family.BTC, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA", None),
        (Family.BTC, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf", None),
        (Family.LTC, "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh", None),
        (Family.LTC, "LUWPbpM43E2p7ZSh8cyTBEkvpHmr3cB8Ez", None),
        (Family.LTC, "M7wtsL7wSHDBJVMWWhtQfTMSYYkyooAAXM", None),
        (Family.BCH, "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6", None),
        (
            Family.BCH,
            "qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6",
            "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6",
        ),
        (
            Family.BCH,
            "BITCOINCASH:QQYX49MU0KKN9FTFJ6HJE6G2WFER34YFNQ5TAHQ3Q6",
            "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6",
        ),
        (
            Family.BCH,
            "QQYX49MU0KKN9FTFJ6HJE6G2WFER34YFNQ5TAHQ3Q6",
            "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6",
        ),
        # CashAddr spec conversion example: legacy P2PKH becomes CashAddr.
        (
            Family.BCH,
            "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu",
            "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
        ),
        # ... and legacy P2SH becomes a p… CashAddr.
        (
            Family.BCH,
            "3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC",
            "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq",
        ),
        (Family.DOGE, "DBus3bamQjgJULBJtYXpEzDWQRwF5iwxgC", None),
        (
            Family.EVM,
            "0x9858effd232b4033e47d90003d41ec34ecaeda94",
            "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
        ),
        (
            Family.EVM,
            "0x9858EFFD232B4033E47D90003D41EC34ECAEDA94",
            "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
        ),
        (Family.EVM, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94", None),
        (Family.SOL, "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk", None),
        (Family.XRP, "rHsMGQEkVNJmpGWs8XUBoTBiAAbwxZN5v3", None),
        (
            Family.ADA,
            "addr1qy8ac7qqy0vtulyl7wntmsxc6wex80gvcyjy33qffrhm7sh927ysx5sftuw0dlft05dz3c7revpf7j"
            "x0xnlcjz3g69mq4afdhv",
            None,
        ),
        (Family.ADA, ada_bech32(0x61, KEYHASH), None),  # enterprise, key payment
        (Family.ADA, ada_bech32(0x71, KEYHASH), None),  # enterprise, script payment
        (Family.ADA, ada_bech32(0x11, KEYHASH + KEYHASH), None),  # base, script payment
    ],
)
def test_accepted_forms_are_normalised(
    family: Family, given_address: str, normalised: str | None
) -> None:
    assert validate_address(family, given_address) == (normalised or given_address)


def test_dogecoin_p2sh_is_accepted() -> None:
    address = P2SHAddrEncoder.EncodeKey(BIP84_PUBKEY, net_ver=b"\x16")
    assert validate_address(Family.DOGE, address) == address


def test_mainnet_byron_address_is_accepted(abandon: str) -> None:
    address = byron(abandon)
    assert address.startswith("Ae2")
    assert validate_address(Family.ADA, address) == address


def test_testnet_byron_address_is_refused(abandon: str) -> None:
    with pytest.raises(InvalidAddress, match="Cardano"):
        validate_address(Family.ADA, byron(abandon, network_magic=1097911063))


@pytest.mark.parametrize(
    ("family", "address"),
    [
        # Script types the payout side does not send to.
        (Family.BTC, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"),  # P2WSH
        (Family.BTC, P2TRAddrEncoder.EncodeKey(BIP84_PUBKEY, hrp="bc")),
        # Other networks.
        (Family.BTC, P2WPKHAddrEncoder.EncodeKey(BIP84_PUBKEY, hrp="tb")),
        (Family.BTC, "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"),
        (Family.LTC, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"),  # deprecated 3… look-alike
        (Family.LTC, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        (Family.BCH, "bchtest:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6"),
        (Family.BCH, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
        (Family.DOGE, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        (Family.ADA, ada_bech32(0x60, KEYHASH, hrp="addr_test")),
        (Family.ADA, ada_bech32(0x60, KEYHASH)),  # testnet network nibble under addr
        (Family.ADA, ada_bech32(0xE1, KEYHASH, hrp="stake")),  # reward address
        (Family.ADA, ada_bech32(0x41, KEYHASH + b"\x01\x02\x03")),  # deprecated pointer
        (Family.XRP, "XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEHi"),  # X-address
        # Corrupted checksums and shapes.
        (Family.BTC, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyv"),
        (Family.BTC, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306FYU"),  # mixed case
        (Family.BCH, "bitcoincash:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q7"),
        (Family.DOGE, "DBus3bamQjgJULBJtYXpEzDWQRwF5iwxgD"),
        (Family.XRP, "rHsMGQEkVNJmpGWs8XUBoTBiAAbwxZN5v4"),
        # Solana has no checksum: only a wrong length is detectable (off-curve PDAs are valid).
        (Family.SOL, "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqx"),
        (Family.EVM, "9858effd232b4033e47d90003d41ec34ecaeda94"),
        (Family.EVM, "0X9858effd232b4033e47d90003d41ec34ecaeda94"),
        (Family.EVM, "0x9858effd232b4033e47d90003d41ec34ecaeda9"),
        (Family.EVM, "0x9858effd232b4033e47d90003d41ec34ecaeda94 00"),
        # Burn addresses.
        (Family.EVM, "0x0000000000000000000000000000000000000000"),
        (Family.BTC, "1111111111111111111114oLvT2"),
        (Family.SOL, "11111111111111111111111111111111"),
        (Family.XRP, "rrrrrrrrrrrrrrrrrrrrrhoLvTp"),
    ],
)
def test_refused_forms_raise_invalid_address(family: Family, address: str) -> None:
    with pytest.raises(InvalidAddress):
        validate_address(family, address)


def test_mixed_case_evm_address_with_wrong_checksum_is_called_a_typo() -> None:
    with pytest.raises(InvalidAddress, match="EIP-55"):
        validate_address(Family.EVM, "0x9858EfFD232B4033E47d90003D41EC34EcaEdA94")


@pytest.mark.parametrize(
    ("family", "chain"),
    [
        (Family.BTC, "Bitcoin"),
        (Family.LTC, "Litecoin"),
        (Family.BCH, "Bitcoin Cash"),
        (Family.DOGE, "Dogecoin"),
        (Family.EVM, "Ethereum"),
        (Family.SOL, "Solana"),
        (Family.XRP, "XRP"),
        (Family.ADA, "Cardano"),
    ],
)
def test_error_message_names_the_chain(family: Family, chain: str) -> None:
    with pytest.raises(InvalidAddress, match=chain):
        validate_address(family, "nope")


def test_non_string_input_is_an_invalid_address() -> None:
    with pytest.raises(InvalidAddress):
        validate_address(Family.BTC, None)  # type: ignore[arg-type]


def test_overlong_input_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidAddress):
        validate_address(Family.ADA, "Ae2" + "1" * 10_000)


BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
PREFIXES = ["", "bc1q", "ltc1q", "bitcoincash:", "bitcoincash:p", "0x", "addr1", "stake1"]
PREFIXES += ["r", "D", "1", "3", "M", "L", "Ae2", "DdzFF", "X"]

garbage = st.one_of(
    st.text(max_size=160),
    st.builds(
        str.__add__,
        st.sampled_from(PREFIXES),
        st.text(alphabet=BASE58 + BECH32 + "0123456789abcdefABCDEF", max_size=110),
    ),
    st.binary(max_size=80).map(Base58Encoder.Encode),
    st.binary(max_size=80).map(Base58Encoder.CheckEncode),
    st.binary(max_size=80).map(lambda data: Bech32Encoder.Encode("addr", data)),
    st.binary(max_size=60).map(lambda data: Bech32Encoder.Encode("bc", data)),
)


@settings(max_examples=400, deadline=None)
@given(family=st.sampled_from(list(Family)), text=garbage)
def test_garbage_only_ever_raises_invalid_address(family: Family, text: str) -> None:
    try:
        normalised = validate_address(family, text)
    except InvalidAddress:
        return
    # Random bytes can form a real address; then normalising must be idempotent.
    assert validate_address(family, normalised) == normalised


@settings(max_examples=40, deadline=None)
@given(family=st.sampled_from(list(Family)), index=st.integers(0, MAX_INDEX))
def test_derived_address_validates_only_for_its_own_family(
    abandon_root: HDRoot, family: Family, index: int
) -> None:
    address = abandon_root.address(family, index)
    assert validate_address(family, address) == address
    for other in Family:
        if other is not family:
            with pytest.raises(InvalidAddress):
                validate_address(other, address)


def test_cardano_key_hash_helper_is_28_bytes() -> None:
    assert len(Blake2b224.QuickDigest(b"x")) == len(KEYHASH)


def test_solana_program_derived_addresses_are_valid_payout_addresses() -> None:
    # Off the ed25519 curve (a PDA): multisig vaults receive funds at such addresses.
    assert validate_address(Family.SOL, "11111111111111111111111111111112")
