"""HDRoot input handling, secrecy, caching and thread-safety; mnemonic generation."""

from __future__ import annotations

import copy
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.coinpay.errors import IndexExhausted, InvalidMnemonic
from keel.coinpay.wallets import (
    MAX_INDEX,
    UTXO_FAMILIES,
    Family,
    HDRoot,
    Network,
    generate_mnemonic,
    path_for,
)
from keel.coinpay.wallets.hd_root import _Chain


@pytest.mark.parametrize(
    "mnemonic",
    [
        "  ABANDON abandon\tabandon abandon abandon abandon abandon abandon abandon abandon\n"
        "abandon About  ",
        "abandon  abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon about",
    ],
)
def test_whitespace_and_case_are_normalised(abandon_root: HDRoot, mnemonic: str) -> None:
    root = HDRoot.from_mnemonic(mnemonic)
    assert root.address(Family.BTC, 0) == abandon_root.address(Family.BTC, 0)


def test_wrong_checksum_raises_invalid_mnemonic() -> None:
    with pytest.raises(InvalidMnemonic, match="checksum"):
        HDRoot.from_mnemonic(" ".join(["abandon"] * 12))


def test_unknown_word_raises_invalid_mnemonic_naming_its_position_not_the_word() -> None:
    phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
    with pytest.raises(InvalidMnemonic, match="word 11 is not in the BIP39 English") as caught:
        HDRoot.from_mnemonic(phrase + "zebrafish about")
    assert "zebrafish" not in str(caught.value)


@pytest.mark.parametrize("count", [0, 1, 11, 13, 25])
def test_wrong_word_count_raises_invalid_mnemonic(count: int) -> None:
    with pytest.raises(InvalidMnemonic, match=f"this one has {count}"):
        HDRoot.from_mnemonic(" ".join(["abandon"] * count))


def test_invalid_mnemonic_message_never_contains_the_words() -> None:
    with pytest.raises(InvalidMnemonic) as caught:
        HDRoot.from_mnemonic("legal winner thank year wave sausage worth useful legal winner thank")
    assert not {"legal", "winner", "sausage"} & set(str(caught.value).split())


@pytest.mark.parametrize("family", list(Family))
def test_highest_index_is_usable(abandon_root: HDRoot, family: Family) -> None:
    assert abandon_root.address(family, MAX_INDEX)
    assert abandon_root.private_key(family, MAX_INDEX)


@pytest.mark.parametrize("family", [Family.BTC, Family.SOL, Family.ADA])
def test_index_beyond_max_raises_index_exhausted(abandon_root: HDRoot, family: Family) -> None:
    with pytest.raises(IndexExhausted):
        abandon_root.address(family, MAX_INDEX + 1)
    with pytest.raises(IndexExhausted):
        abandon_root.private_key(family, MAX_INDEX + 1)
    with pytest.raises(IndexExhausted):
        path_for(family, MAX_INDEX + 1)


@pytest.mark.parametrize("family", [Family.BTC, Family.SOL, Family.ADA])
def test_negative_index_raises_value_error(abandon_root: HDRoot, family: Family) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        abandon_root.address(family, -1)
    with pytest.raises(ValueError, match=">= 0"):
        abandon_root.private_key(family, -1)


def test_non_int_index_raises_type_error(abandon_root: HDRoot) -> None:
    with pytest.raises(TypeError):
        abandon_root.address(Family.BTC, True)
    with pytest.raises(TypeError):
        abandon_root.address(Family.BTC, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", list(Family))
def test_private_key_length(abandon_root: HDRoot, family: Family) -> None:
    expected = 64 if family is Family.ADA else 32
    assert len(abandon_root.private_key(family, 0)) == expected


def test_repr_and_str_reveal_no_secret(abandon: str, abandon_root: HDRoot) -> None:
    shown = repr(abandon_root) + str(abandon_root) + f"{abandon_root!r}"
    key = abandon_root.private_key(Family.EVM, 0).hex()
    assert "abandon" not in shown
    assert key not in shown
    assert shown.count("<secret>") == 3


def test_pickling_and_copying_are_refused(abandon_root: HDRoot) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(abandon_root)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(abandon_root)


def test_hardened_prefix_is_derived_once_per_family_and_network(
    abandon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[tuple[Family, Network]] = []
    original = HDRoot._build_chain

    def counting(self: HDRoot, family: Family, network: Network) -> _Chain:
        builds.append((family, network))
        return original(self, family, network)

    monkeypatch.setattr(HDRoot, "_build_chain", counting)
    root = HDRoot.from_mnemonic(abandon)
    expected = [(f, Network.MAINNET) for f in Family]
    expected += [(f, n) for f in UTXO_FAMILIES for n in (Network.TESTNET, Network.REGTEST)]
    for index in range(20):
        for family, network in expected:
            root.address(family, index, network)
            root.private_key(family, index, network)
    assert sorted(builds) == sorted(expected)


def test_concurrent_first_use_derives_the_same_addresses(
    abandon: str, abandon_root: HDRoot
) -> None:
    root = HDRoot.from_mnemonic(abandon)
    barrier = threading.Barrier(8)

    def derive(worker: int) -> list[str]:
        barrier.wait()  # all threads hit the empty cache together
        return [root.address(family, worker) for family in Family]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(derive, range(8)))
    expected = [[abandon_root.address(f, worker) for f in Family] for worker in range(8)]
    assert results == expected


def test_generated_mnemonic_has_24_words_by_default_and_builds_a_root() -> None:
    mnemonic = generate_mnemonic()
    assert len(mnemonic.split()) == 24
    assert HDRoot.from_mnemonic(mnemonic).address(Family.BTC, 0).startswith("bc1q")


@pytest.mark.parametrize("words", [12, 15, 18, 21, 24])
def test_generated_mnemonics_are_valid_and_fresh(words: int) -> None:
    first, second = generate_mnemonic(words), generate_mnemonic(words)
    assert len(first.split()) == words
    assert first != second
    HDRoot.from_mnemonic(first)


@pytest.mark.parametrize("words", [0, 11, 13, 25])
def test_generate_mnemonic_rejects_non_bip39_word_counts(words: int) -> None:
    with pytest.raises(ValueError, match="words must be one of"):
        generate_mnemonic(words)


def test_the_fee_wallets_are_off_every_payment_path(abandon_root: HDRoot) -> None:
    from eth_account import Account

    evm_address, evm_key = abandon_root.fee_wallet(Family.EVM)
    assert Account.from_key(evm_key).address == evm_address  # the key signs for the address
    # m/44'/60'/1'/0/0 for the abandon-about mnemonic (any BIP44 wallet derives the same)
    assert evm_address == "0x78839F6054d7ed13918bAe0473BA31b1Ca9D7265"
    sol_address, sol_key = abandon_root.fee_wallet(Family.SOL)
    assert len(sol_key) == 32
    payments = {abandon_root.address(f, i) for f in (Family.EVM, Family.SOL) for i in range(3)}
    assert {evm_address, sol_address}.isdisjoint(payments)
    with pytest.raises(KeyError):
        abandon_root.fee_wallet(Family.BTC)
