"""Shared fixtures: the BIP39 test mnemonic every published vector is derived from."""

from __future__ import annotations

import pytest

from keel.coinpay.wallets import HDRoot

ABANDON = (
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)


@pytest.fixture(scope="session")
def abandon() -> str:
    """The BIP39 test mnemonic ``abandon ×11 about``."""
    return ABANDON


@pytest.fixture(scope="session")
def abandon_root() -> HDRoot:
    """HDRoot of the ``abandon ×11 about`` mnemonic, no passphrase (shared: it is immutable)."""
    return HDRoot.from_mnemonic(ABANDON)
