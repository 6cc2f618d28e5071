"""Chain configuration from the environment: what is read, and every bad value refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.assets import COINS, DEFAULT_CONFIRMATIONS
from keel.coinpay.chains import config
from keel.coinpay.errors import InvalidChainConfig
from keel.coinpay.wallets import Network

CHAINS = list(DEFAULT_CONFIRMATIONS)
USDC_ETH = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def test_nothing_configured_means_no_chain_has_a_node_and_defaults_apply() -> None:
    loaded = config.load({"PATH": "/bin", "KEEL_COINPAY_CONFIRMATIONS": '{"BTC": 3}'})
    assert loaded.configured == ()
    assert loaded.chain("ETH").confirmations == DEFAULT_CONFIRMATIONS["ETH"]
    assert not loaded.chain("ETH").configured
    tokens = {t.coin: t for t in loaded.chain("ETH").tokens}
    assert set(tokens) == {"USDT_ETH", "USDC_ETH"}
    assert tokens["USDC_ETH"] == config.Token("USDC_ETH", USDC_ETH, 6)


def test_reads_urls_confirmations_and_contract_overrides() -> None:
    loaded = config.load(
        {
            "KEEL_COINPAY_ETH_RPC_URLS": " http://127.0.0.1:8545 , https://eth.example.org/v3/k ",
            "KEEL_COINPAY_ETH_CONFIRMATIONS": "3",
            "KEEL_COINPAY_LTC_RPC_URLS": "http://user:p%40ss@127.0.0.1:19443",
            "KEEL_COINPAY_USDC_ETH_CONTRACT": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        }
    )
    eth = loaded.chain("ETH")
    assert eth.rpc_urls == ("http://127.0.0.1:8545", "https://eth.example.org/v3/k")
    assert eth.confirmations == 3
    assert loaded.configured == ("LTC", "ETH")
    contracts = {t.coin: t.contract for t in eth.tokens}
    assert contracts["USDC_ETH"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # EIP-55
    assert contracts["USDT_ETH"] == COINS["USDT_ETH"].contract
    assert "p%40ss" not in repr(loaded)  # URLs (and their credentials) stay out of repr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("KEEL_COINPAY_ETH_RPC_URLS", "127.0.0.1:8545", "http"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "ftp://node", "http"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://a,,http://b", "URL 2 is empty"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://a,", "URL 2 is empty"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://", "no valid host"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://bad host", "no valid host"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://node:0", "port"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://node:99999", "port"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://node/#x", "fragment"),
        ("KEEL_COINPAY_ETH_RPC_URLS", "http://node,http://node", "repeats"),
        ("KEEL_COINPAY_ETH_RPC_URLS", ",".join(f"http://n{i}" for i in range(17)), "at most"),
        ("KEEL_COINPAY_ETHEREUM_RPC_URLS", "http://node", "no chain 'ETHEREUM'"),
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "-1", "whole number"),
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "1.5", "whole number"),
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "1_000", "whole number"),
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "", "whole number"),
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "١٢", "whole number"),  # Arabic-Indic digits
        ("KEEL_COINPAY_ETH_CONFIRMATIONS", "10001", "whole number"),
        ("KEEL_COINPAY_DOT_CONFIRMATIONS", "3", "no chain 'DOT'"),
        ("KEEL_COINPAY_USDC_ETH_CONTRACT", "0x5fbdb2315678afecb367f032d93f642f64180aa", "contract"),
        ("KEEL_COINPAY_USDC_ETH_CONTRACT", "0x5FBdb2315678afecb367f032d93f642f64180aa3", "EIP-55"),
        ("KEEL_COINPAY_USDC_ETH_CONTRACT", "0x" + "0" * 40, "burn"),
        ("KEEL_COINPAY_ETH_CONTRACT", USDC_ETH, "own coin"),
        ("KEEL_COINPAY_DAI_ETH_CONTRACT", USDC_ETH, "no token 'DAI_ETH'"),
        ("KEEL_COINPAY_USDC_SOL_CONTRACT", USDC_ETH, "contract address for SOL"),
    ],
)
def test_bad_values_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidChainConfig, match=message) as caught:
        config.load({key: value})
    assert key in caught.value.detail


def test_every_problem_is_listed_at_once_and_no_credential_is_repeated() -> None:
    with pytest.raises(InvalidChainConfig) as caught:
        config.load(
            {
                "KEEL_COINPAY_LTC_RPC_URLS": "http://user:hunter2@node,gopher://user:hunter2@x",
                "KEEL_COINPAY_BTC_CONFIRMATIONS": "six",
            }
        )
    detail = caught.value.detail
    assert "KEEL_COINPAY_LTC_RPC_URLS" in detail
    assert "KEEL_COINPAY_BTC_CONFIRMATIONS" in detail
    assert "hunter2" not in detail
    assert "user" not in detail


def test_an_empty_url_list_leaves_the_chain_unconfigured() -> None:
    assert config.load({"KEEL_COINPAY_BTC_RPC_URLS": "  "}).configured == ()


hosts = st.sampled_from(["127.0.0.1", "localhost", "node-1.example.org", "[::1]", "ltc_node"])
credentials = st.one_of(
    st.just(""),
    st.tuples(st.text("abcXYZ019", min_size=1, max_size=8), st.text("pw%40-_.~", max_size=8)).map(
        lambda up: f"{up[0]}:{up[1]}@"
    ),
)
urls = st.builds(
    lambda scheme, cred, host, port, path: f"{scheme}://{cred}{host}:{port}{path}",
    st.sampled_from(["http", "https"]),
    credentials,
    hosts,
    st.integers(min_value=1, max_value=65535),
    st.sampled_from(["", "/", "/v3/abc123", "/wallet/keel?x=1"]),
)


@given(
    st.dictionaries(
        st.sampled_from(CHAINS),
        st.tuples(
            st.lists(urls, min_size=1, max_size=4, unique=True),
            st.integers(min_value=0, max_value=config.MAX_CONFIRMATIONS),
        ),
        max_size=4,
    )
)
def test_whatever_valid_configuration_is_given_is_what_is_read(
    chains: dict[str, tuple[list[str], int]],
) -> None:
    environ = {}
    for chain, (chain_urls, confirmations) in chains.items():
        environ[f"KEEL_COINPAY_{chain}_RPC_URLS"] = ",".join(chain_urls)
        environ[f"KEEL_COINPAY_{chain}_CONFIRMATIONS"] = str(confirmations)
    loaded = config.load(environ)
    assert set(loaded.configured) == set(chains)
    for chain, (chain_urls, confirmations) in chains.items():
        assert loaded.chain(chain).rpc_urls == tuple(chain_urls)
        assert loaded.chain(chain).confirmations == confirmations


@given(st.text(max_size=12))
def test_confirmations_are_digits_in_range_or_refused(text: str) -> None:
    valid = text.strip().isascii() and text.strip().isdigit()
    valid = valid and len(text.strip()) <= 6 and int(text.strip()) <= config.MAX_CONFIRMATIONS
    environ = {"KEEL_COINPAY_DOGE_CONFIRMATIONS": text}
    if valid:
        assert config.load(environ).chain("DOGE").confirmations == int(text.strip())
    else:
        with pytest.raises(InvalidChainConfig):
            config.load(environ)


@given(st.text(max_size=40))
def test_any_url_text_is_read_or_refused_with_invalid_chain_config(text: str) -> None:
    try:
        loaded = config.load({"KEEL_COINPAY_LTC_RPC_URLS": text})
    except InvalidChainConfig:
        return
    assert all(u.lower().startswith(("http://", "https://")) for u in loaded.chain("LTC").rpc_urls)


def test_evm_chains_have_their_mainnet_chain_id_unless_told_otherwise() -> None:
    loaded = config.load(
        {"KEEL_COINPAY_ETH_CHAIN_ID": " 31337 ", "KEEL_COINPAY_BNB_CHAIN_ID": "97"}
    )
    ids = {chain: loaded.chain(chain).chain_id for chain in CHAINS}
    assert ids == {**dict.fromkeys(CHAINS), "ETH": 31337, "POL": 137, "BNB": 97}
    assert ids == {c: COINS[c].evm_chain_id for c in CHAINS} | {"ETH": 31337, "BNB": 97}
    top = str(config.MAX_CHAIN_ID)
    assert config.load({"KEEL_COINPAY_POL_CHAIN_ID": top}).chain("POL").chain_id == int(top)


# Networks (UTXO chains) ----------------------------------------------------------------------

UTXO_CHAINS = ["BTC", "BCH", "LTC", "DOGE"]


def test_every_chain_is_on_mainnet_unless_told() -> None:
    loaded = config.load({"KEEL_COINPAY_LTC_RPC_URLS": "http://127.0.0.1:19443"})
    assert {c.network for c in loaded.chains.values()} == {Network.MAINNET}


def test_reads_each_utxo_chains_network() -> None:
    loaded = config.load(
        {
            "KEEL_COINPAY_LTC_NETWORK": "regtest",
            "KEEL_COINPAY_BTC_NETWORK": " Testnet ",
            "KEEL_COINPAY_DOGE_NETWORK": "mainnet",
        }
    )
    assert loaded.chain("LTC").network is Network.REGTEST
    assert loaded.chain("BTC").network is Network.TESTNET
    assert loaded.chain("DOGE").network is Network.MAINNET
    assert loaded.chain("BCH").network is Network.MAINNET


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("KEEL_COINPAY_ETH_CHAIN_ID", "0", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "-1", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "0x7a69", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "031337", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "1.0", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "1e3", "whole number from 1"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "٣١٣٣٧", "whole number from 1"),  # Arabic-Indic digits
        ("KEEL_COINPAY_ETH_CHAIN_ID", str(config.MAX_CHAIN_ID + 1), "EIP-2294"),
        ("KEEL_COINPAY_ETH_CHAIN_ID", "9" * 40, "EIP-2294"),
        ("KEEL_COINPAY_BTC_CHAIN_ID", "1", "BTC is not an EVM chain"),
        ("KEEL_COINPAY_SOL_CHAIN_ID", "101", "SOL is not an EVM chain"),
        ("KEEL_COINPAY_USDC_ETH_CHAIN_ID", "1", "no chain 'USDC_ETH'"),
        ("KEEL_COINPAY_GOERLI_CHAIN_ID", "5", "no chain 'GOERLI'"),
    ],
)
def test_bad_chain_ids_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidChainConfig, match=message) as caught:
        config.load({key: value})
    assert key in caught.value.detail


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("KEEL_COINPAY_LTC_NETWORK", "signet", "one of mainnet, testnet, regtest"),
        ("KEEL_COINPAY_LTC_NETWORK", "", "one of mainnet, testnet, regtest"),
        ("KEEL_COINPAY_LTC_NETWORK", "main", "one of mainnet, testnet, regtest"),
        ("KEEL_COINPAY_ETH_NETWORK", "regtest", "only UTXO chains"),
        ("KEEL_COINPAY_SOL_NETWORK", "mainnet", "only UTXO chains"),
        ("KEEL_COINPAY_DOT_NETWORK", "regtest", "no chain 'DOT'"),
        ("KEEL_COINPAY_USDC_ETH_NETWORK", "regtest", "no chain 'USDC_ETH'"),
    ],
)
def test_bad_networks_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidChainConfig, match=message) as caught:
        config.load({key: value})
    assert key in caught.value.detail


def test_a_bad_network_is_listed_with_the_other_problems() -> None:
    with pytest.raises(InvalidChainConfig) as caught:
        config.load({"KEEL_COINPAY_LTC_NETWORK": "mainnet2", "KEEL_COINPAY_LTC_CONFIRMATIONS": "x"})
    assert "KEEL_COINPAY_LTC_NETWORK" in caught.value.detail
    assert "KEEL_COINPAY_LTC_CONFIRMATIONS" in caught.value.detail


@given(st.sampled_from(UTXO_CHAINS), st.text(max_size=12))
def test_a_network_is_one_of_three_names_or_refused(chain: str, text: str) -> None:
    environ = {f"KEEL_COINPAY_{chain}_NETWORK": text}
    if text.strip().lower() in {"mainnet", "testnet", "regtest"}:
        assert config.load(environ).chain(chain).network == text.strip().lower()
    else:
        with pytest.raises(InvalidChainConfig):
            config.load(environ)


def test_each_chain_speaks_its_default_api_unless_told() -> None:
    loaded = config.load({"KEEL_COINPAY_BTC_API": " Esplora ", "KEEL_COINPAY_LTC_API": "jsonrpc"})
    assert loaded.chain("BTC").api == "esplora"
    assert loaded.chain("LTC").api == "jsonrpc"
    assert loaded.chain("ADA").api == "koios"
    assert {loaded.chain(c).api for c in ("ETH", "SOL", "XRP", "DOGE")} == {"jsonrpc"}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("KEEL_COINPAY_ETH_API", "esplora", "ETH providers speak jsonrpc, not 'esplora'"),
        ("KEEL_COINPAY_BTC_API", "", "BTC providers speak jsonrpc or esplora"),
        ("KEEL_COINPAY_ADA_API", "jsonrpc", "ADA providers speak koios"),
        ("KEEL_COINPAY_DOT_API", "jsonrpc", "no chain 'DOT'"),
    ],
)
def test_bad_apis_are_refused_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidChainConfig, match=message) as caught:
        config.load({key: value})
    assert key in caught.value.detail
