"""Which source a configured chain gets."""

from __future__ import annotations

import pytest

from keel.coinpay.chains import config, sources
from keel.coinpay.chains.evm import EvmSource
from keel.coinpay.chains.solana import SolanaSource
from keel.coinpay.chains.utxo import UtxoSource
from keel.coinpay.chains.xrp import XrpSource
from keel.coinpay.errors import InvalidChainConfig

ENV = {
    "KEEL_COINPAY_POL_RPC_URLS": "http://127.0.0.1:8545",
    "KEEL_COINPAY_DOGE_RPC_URLS": "http://u:p@127.0.0.1:22555",
    "KEEL_COINPAY_SOL_RPC_URLS": "http://127.0.0.1:8899",
    "KEEL_COINPAY_XRP_RPC_URLS": "http://127.0.0.1:5005,http://127.0.0.1:51234",
}


@pytest.mark.parametrize(
    ("chain", "kind"),
    [("POL", EvmSource), ("DOGE", UtxoSource), ("SOL", SolanaSource), ("XRP", XrpSource)],
)
async def test_each_family_gets_its_source(chain: str, kind: type) -> None:
    source = sources.open_source(config.load(ENV).chain(chain))
    try:
        assert isinstance(source, kind)
        assert source.chain == chain
    finally:
        await source.aclose()


@pytest.mark.parametrize("chain", ["BTC", "ADA"])
def test_a_chain_without_a_url_is_refused(chain: str) -> None:
    with pytest.raises(InvalidChainConfig, match=chain):
        sources.open_source(config.load(ENV).chain(chain))
