"""validate_address accepts each chain's mainnet forms, normalises them, refuses the rest."""

from __future__ import annotations

import cbor2
import pytest
from bip_utils import (
    AdaByronIcarusAddrEncoder,
    Base58Alphabets,
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
    SegwitBech32Encoder,
)
from bip_utils.utils.crypto import Blake2b224, Crc32
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coinpay.errors import InvalidAddress
from keel.coinpay.wallets import MAX_INDEX, Family, HDRoot, validate_address

BIP84_PUBKEY = bytes.fromhex("0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c")
# The x-only key of BIP350's mainnet Taproot vector (secp256k1's generator).
BIP350_TAPROOT_KEY = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
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
        # Other networks.
        (Family.BTC, P2WPKHAddrEncoder.EncodeKey(BIP84_PUBKEY, hrp="tb")),
        (Family.BTC, "ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"),
        (Family.LTC, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        (Family.LTC, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
        (Family.BTC, SegwitBech32Encoder.Encode("ltc", 1, bytes.fromhex(BIP350_TAPROOT_KEY))),
        (Family.BCH, "bchtest:qqyx49mu0kkn9ftfj6hje6g2wfer34yfnq5tahq3q6"),
        (Family.BCH, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
        (Family.DOGE, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"),
        (Family.ADA, ada_bech32(0x60, KEYHASH, hrp="addr_test")),
        (Family.ADA, ada_bech32(0x60, KEYHASH)),  # testnet network nibble under addr
        (Family.ADA, ada_bech32(0xE1, KEYHASH, hrp="stake")),  # reward address
        (Family.ADA, ada_bech32(0x41, KEYHASH + b"\x01\x02\x03")),  # deprecated pointer
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


# Segwit: BIP173 and BIP350 test vectors (bech32 for witness v0, bech32m for v1 and later).


@pytest.mark.parametrize(
    ("given_address", "kind"),
    [
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "P2WPKH"),  # BIP173 and BIP350
        ("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", "P2WSH"),  # BIP173
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "P2TR"),  # BIP350
        ("bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", "P2TR"),  # BIP86
    ],
)
def test_bitcoin_segwit_v0_and_taproot_vectors_are_accepted(given_address: str, kind: str) -> None:
    assert validate_address(Family.BTC, given_address) == given_address.lower(), kind


def test_taproot_of_a_derived_key_is_accepted() -> None:
    address = P2TRAddrEncoder.EncodeKey(BIP84_PUBKEY, hrp="bc")
    assert validate_address(Family.BTC, address) == address


@pytest.mark.parametrize(
    "address",
    [
        # BIP350 "valid" vectors that decode but pay to a witness version or length with no
        # spending rules: anyone could take funds sent there.
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",  # v1, 40 B
        "BC1SW50QGDZ25J",  # v16, 2 bytes
        "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",  # v2, 16 bytes
    ],
)
def test_witness_programs_without_spending_rules_are_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="no spending rules"):
        validate_address(Family.BTC, address)


@pytest.mark.parametrize(
    "address",
    [
        # BIP173's vectors for v1+ carry a bech32 checksum, which BIP350 made invalid.
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
        "BC1SW50QA3JX3S",
        "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
        # BIP350's invalid vectors.
        "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # unknown hrp
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # v1 with bech32
        "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",  # v2 with bech32
        "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",  # v16 with bech32
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",  # v0 with bech32m
        "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",  # v0 with bech32m
        "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # bad character
        "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # version 17
        "bc1pw5dgrnzv",  # 1-byte program
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",  # 41 B
        "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # v0 with 16 bytes
        "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # >4 padding bits
        "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
        "bc1gmk9yu",  # empty data
        # BIP350's testnet vectors are valid, on the wrong network.
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
    ],
)
def test_malformed_and_foreign_segwit_vectors_are_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="not a valid Bitcoin address"):
        validate_address(Family.BTC, address)


def test_taproot_program_off_the_curve_is_refused() -> None:
    # x = 2**256 - 1 exceeds the field size: no key has it, so nothing could ever spend it.
    address = SegwitBech32Encoder.Encode("bc", 1, b"\xff" * 32)
    with pytest.raises(InvalidAddress, match="not a valid public key"):
        validate_address(Family.BTC, address)


def test_overlong_segwit_string_is_refused() -> None:
    # Valid bech32m over 90 characters: BIP173 caps the length.
    address = SegwitBech32Encoder.Encode("bc" + "c" * 30, 1, bytes.fromhex(BIP350_TAPROOT_KEY))
    assert len(address) > 90
    with pytest.raises(InvalidAddress):
        validate_address(Family.BTC, address)


# Litecoin: segwit v0 and Taproot under ltc1, P2SH under M… and its deprecated 3… spelling.


@pytest.mark.parametrize(
    "address",
    [
        SegwitBech32Encoder.Encode("ltc", 0, bytes(range(1, 33))),  # P2WSH
        SegwitBech32Encoder.Encode("ltc", 1, bytes.fromhex(BIP350_TAPROOT_KEY)),  # P2TR
    ],
)
def test_litecoin_p2wsh_and_taproot_are_accepted(address: str) -> None:
    assert validate_address(Family.LTC, address.upper()) == address


def test_litecoin_p2sh_in_bitcoin_spelling_is_stored_as_m_address() -> None:
    # One script hash, two prefixes: 0x05 (3…, shared with Bitcoin) and 0x32 (M…).
    three = P2SHAddrEncoder.EncodeKey(BIP84_PUBKEY, net_ver=b"\x05")
    m_form = P2SHAddrEncoder.EncodeKey(BIP84_PUBKEY, net_ver=b"\x32")
    assert three.startswith("3")
    assert m_form.startswith("M")
    assert validate_address(Family.LTC, three) == m_form
    assert validate_address(Family.LTC, m_form) == m_form
    assert validate_address(Family.LTC, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf").startswith("M")


# XRP X-addresses: the XLS-5 spec's vectors (as in ripple-address-codec's tests).

XRP_CLASSIC = "rGWrZyQqhTp9Xu7G5Pkayo7bXjH4k4QYpf"


@pytest.mark.parametrize(
    ("x_address", "normalised"),
    [
        # No tag: the same account as the classic address, stored in its classic form.
        ("XVLhHMPHU98es4dbozjVtdWzVrDjtV5fdx1mHp98tDMoQXb", XRP_CLASSIC),
        ("X7AcgcsBL6XDcUb289X4mJ8djcdyKaB5hJDWMArnXr61cqZ", "r9cZA1mLK5R5Am25ArfXFmqgNwjZgnfk59"),
        ("XV5sbjUmgPpvXv4ixFWZ5ptAYZ6PD2gYsjNFQLKYW33DzBm", "rPEPPER7kfTD9w2To4CQk6UCfuHM9c6GDY"),
        # A tag (0 included: "tag 0" is not "no tag") must reach the payout: kept as given.
        ("XVLhHMPHU98es4dbozjVtdWzVrDjtV8AqEL4xcZj5whKbmc", None),  # tag 0
        ("XVLhHMPHU98es4dbozjVtdWzVrDjtV8xvjGQTYPiAx6gwDC", None),  # tag 1
        ("XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEHi", None),  # tag 4294967295
        ("X7AcgcsBL6XDcUb289X4mJ8djcdyKaLFuhLRuNXPrDeJd9A", None),  # tag 11747
        ("X7d3eHCXzwBeWrZec1yT24iZerQjYL8m8zCJ16ACxu1BrBY", None),  # tag 23480
    ],
)
def test_xrp_x_addresses_are_accepted(x_address: str, normalised: str | None) -> None:
    assert validate_address(Family.XRP, x_address) == (normalised or x_address)


def _x_address(prefix: bytes, flag: int, tag: bytes) -> str:
    account = bytes(Base58Decoder.CheckDecode(XRP_CLASSIC, Base58Alphabets.RIPPLE))[1:]
    payload = prefix + account + bytes([flag]) + tag
    return str(Base58Encoder.CheckEncode(payload, Base58Alphabets.RIPPLE))


@pytest.mark.parametrize(
    "address",
    [
        "T719a5UwUCnEs54UsxG9CJYYDhwmFCqkr7wxCcNcfZ6p5GZ",  # testnet, no tag
        "TVE26TYGhfLC7tQDno7G8dGtxSkYQn49b3qD26PK7FcGSKE",  # testnet, no tag
        "TVE26TYGhfLC7tQDno7G8dGtxSkYQnSy8RHqGHoGJ59spi2",  # testnet, tag 0
        "XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEHj",  # corrupted checksum
        "XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEH",  # truncated
        _x_address(b"\x05\x44", 2, b"\x01" + bytes(7)),  # reserved 64-bit tag flag
        _x_address(b"\x05\x44", 1, b"\x01" + bytes(3) + b"\x01" + bytes(3)),  # tag over 32 bits
        _x_address(b"\x05\x44", 0, b"\x01" + bytes(7)),  # "no tag" yet tag bytes set
        _x_address(b"\x05\x44", 0, bytes(8))[:-1] + "1",  # checksum broken by hand
    ],
)
def test_malformed_or_testnet_x_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidAddress, match="XRP"):
        validate_address(Family.XRP, address)


def test_x_address_helper_reproduces_the_spec_vector() -> None:
    # Guards the refusal cases above: the helper builds real X-addresses.
    assert _x_address(b"\x05\x44", 0, bytes(8)) == "XVLhHMPHU98es4dbozjVtdWzVrDjtV5fdx1mHp98tDMoQXb"
    assert (
        _x_address(b"\x05\x44", 1, bytes.fromhex("ffffffff00000000"))
        == "XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEHi"
    )
