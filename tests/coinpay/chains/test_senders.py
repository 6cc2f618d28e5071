"""Which configured chains get a live sender, signing for which chain id, with which keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from keel.coinpay import bootstrap
from keel.coinpay.chains import config, senders
from keel.coinpay.errors import InvalidChainConfig, SeedMissing
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Family, HDRoot
from keel.core.crypto import new_key
from tests.coinpay.conftest import ABANDON, payout_address

ROOT = HDRoot.from_mnemonic(ABANDON)


async def root() -> HDRoot:
    return ROOT


async def test_each_configured_evm_chain_gets_a_sender_for_its_chain_id() -> None:
    chains = config.load(
        {
            "KEEL_COINPAY_ETH_RPC_URLS": "http://127.0.0.1:8545,https://eth.example.org/v3/KEY",
            "KEEL_COINPAY_ETH_CHAIN_ID": "31337",
            "KEEL_COINPAY_POL_RPC_URLS": "http://127.0.0.1:8546",
            "KEEL_COINPAY_LTC_RPC_URLS": "http://u:p@127.0.0.1:19443",  # no UTXO sender yet
        }
    )
    opened = senders.open_senders(chains, root)
    try:
        assert {chain: s.chain_id for chain, s in opened.items()} == {"ETH": 31337, "POL": 137}
        assert all(s.batch_limit == 1 for s in opened.values())
        assert "KEY" not in repr(opened)
    finally:
        for sender in opened.values():
            await sender.aclose()
    assert senders.open_senders(config.load({}), root) == {}


def test_a_chain_without_a_node_or_a_sender_is_refused() -> None:
    chains = config.load({"KEEL_COINPAY_LTC_RPC_URLS": "http://127.0.0.1:19443"})
    keys = senders.evm_keys(root)
    with pytest.raises(InvalidChainConfig, match="no RPC URL"):
        senders.open_sender(chains.chain("ETH"), keys)
    with pytest.raises(InvalidChainConfig, match="no sender"):
        senders.open_sender(chains.chain("LTC"), keys)


async def test_keys_are_the_custody_roots_evm_keys_derived_when_asked() -> None:
    key = await senders.evm_keys(root)(5)
    assert Account.from_key(key).address == ROOT.address(Family.EVM, 5)

    async def no_seed_yet() -> HDRoot:
        raise SeedMissing()

    keys = senders.evm_keys(no_seed_yet)  # opening needs no seed; signing does
    with pytest.raises(SeedMissing):
        await keys(5)


async def test_keel_serve_wires_the_configured_chains_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "KEEL_COINPAY_ETH_RPC_URLS": "http://127.0.0.1:9",  # nothing is called at start
        "KEEL_COINPAY_ETH_CONFIRMATIONS": "3",
        "KEEL_COINPAY_LTC_RPC_URLS": "http://u:p@127.0.0.1:9",
    }
    settings = CoinpaySettings(master_key=new_key(), run_workers=False)
    gw = await bootstrap.open_gateway(settings, data_dir=str(tmp_path), environ=environ)
    try:
        assert set(gw.scanners) == {"ETH", "LTC"}
        assert set(gw.watchers["live"]) == {"ETH", "LTC"}
        assert set(gw.senders["live"]) == {"ETH"}  # LTC's needs its platform wallet
        assert gw.settings.required_confirmations("ETH") == 3
        tasks = {p.name for p in bootstrap.build_worker(gw).periodic}
        assert {"scan:ETH", "scan:LTC", "sweep:ETH", "sweep:test"} <= tasks
    finally:
        await bootstrap.close_gateway(gw)
    wallets = {"LTC": payout_address("LTC")}
    settings = CoinpaySettings(master_key=new_key(), run_workers=False, platform_wallets=wallets)
    gw = await bootstrap.open_gateway(settings, data_dir=str(tmp_path), environ=environ)
    try:
        assert set(gw.senders["live"]) == {"ETH", "LTC"}
        assert "sweep:LTC" in {p.name for p in bootstrap.build_worker(gw).periodic}
    finally:
        await bootstrap.close_gateway(gw)


async def test_xrp_gets_a_sender_only_with_its_platform_wallet() -> None:
    from keel.coinpay.chains.xrp_sender import XrpSender

    chains = config.load({"KEEL_COINPAY_XRP_RPC_URLS": "http://127.0.0.1:5005"})
    assert senders.open_senders(chains, root, platform_wallets={}) == {}
    opened = senders.open_senders(chains, root, platform_wallets={"XRP": payout_address("XRP")})
    try:
        assert isinstance(opened["XRP"], XrpSender)
        assert opened["XRP"].serial_per_address
    finally:
        await opened["XRP"].aclose()
    with pytest.raises(InvalidChainConfig, match="not an XRP address"):
        senders.open_senders(chains, root, platform_wallets={"XRP": "0x" + "11" * 20})
