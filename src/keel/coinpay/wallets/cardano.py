"""Cardano Icarus key derivation (CIP-3 master key, CIP-1852 account).

bip-utils' Icarus master key generator ignores the mnemonic passphrase, so a
passphrase-protected installation would silently leave its ADA guarded by the
mnemonic alone. With a passphrase we build the master key ourselves, following
CIP-3, from bip-utils' PBKDF2 and feed it back into bip-utils' CIP-1852 classes.
"""

from __future__ import annotations

from typing import Any, Final

from bip_utils import (
    Bip32KeyData,
    CardanoIcarusSeedGenerator,
    Cip1852,
    Cip1852Coins,
    Ed25519KholawPrivateKey,
    Pbkdf2HmacSha512,
)

# CIP-3 Icarus: PBKDF2-HMAC-SHA512(password=passphrase, salt=entropy, 4096 rounds, 96 bytes).
_PBKDF2_ROUNDS: Final = 4096
_MASTER_KEY_BYTES: Final = 96


def icarus_master_key(entropy: bytes, passphrase: str) -> bytes:
    """Return the 96-byte CIP-3 Icarus master key (kL ‖ kR ‖ chain code) for BIP39 entropy."""
    key = bytearray(
        Pbkdf2HmacSha512.DeriveKey(passphrase, entropy, _PBKDF2_ROUNDS, _MASTER_KEY_BYTES)
    )
    # Clamp kL into an ed25519 scalar as CIP-3 prescribes: clear the low 3 bits,
    # clear the top bit and the third-highest bit, set the second-highest bit.
    key[0] &= 0b1111_1000
    key[31] &= 0b0001_1111
    key[31] |= 0b0100_0000
    return bytes(key)


def icarus_entropy(mnemonic: str) -> bytes:
    """Return the BIP39 entropy that Icarus derives from; ``mnemonic`` must be valid."""
    return bytes(CardanoIcarusSeedGenerator(mnemonic).Generate())


def icarus_account(entropy: bytes, passphrase: str) -> Any:
    """Return the bip-utils ``Cip1852`` object of account m/1852'/1815'/0' (Icarus, mainnet).

    The object holds private keys.
    """
    if passphrase:
        master = icarus_master_key(entropy, passphrase)
        split = Ed25519KholawPrivateKey.Length()
        root = Cip1852.FromPrivateKey(
            master[:split],
            Cip1852Coins.CARDANO_ICARUS,
            Bip32KeyData(chain_code=master[split:]),
        )
    else:
        root = Cip1852.FromSeed(entropy, Cip1852Coins.CARDANO_ICARUS)
    return root.Purpose().Coin().Account(0)
