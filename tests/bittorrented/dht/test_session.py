"""Sessions: settings that never leave loopback in tests, and one real loopback session."""

from __future__ import annotations

import asyncio

import libtorrent as lt
import pytest

from keel.bittorrented import errors
from keel.bittorrented.dht import fetcher, session


def test_loopback_settings_stay_on_loopback_and_lift_the_per_ip_limits() -> None:
    pack = session.settings_pack(session.SessionSettings.loopback())
    assert pack["listen_interfaces"] == "127.0.0.1:0"
    assert pack["dht_bootstrap_nodes"] == ""
    assert pack["enable_lsd"] is pack["enable_upnp"] is pack["enable_natpmp"] is False
    assert pack["enable_ip_notifier"] is False
    assert pack["dht_restrict_routing_ips"] is False
    assert pack["dht_block_ratelimit"] >= 100_000
    assert pack["dht_sample_infohashes_interval"] == 0
    assert pack["allow_multiple_connections_per_ip"] is True


def test_public_settings_bootstrap_from_routers_but_never_map_ports() -> None:
    pack = session.settings_pack(session.SessionSettings())
    assert pack["listen_interfaces"] == "0.0.0.0:3334"
    assert "router.bittorrent.com:6881" in pack["dht_bootstrap_nodes"]
    assert pack["enable_upnp"] is pack["enable_natpmp"] is pack["enable_lsd"] is False
    assert pack["dht_restrict_routing_ips"] is True
    # A peer whose first dial failed is tried again within one metadata fetch.
    assert pack["min_reconnect_time"] < fetcher.DEFAULT_TIMEOUT_SECONDS / 2


def test_ipv6_listen_host_is_bracketed() -> None:
    settings = session.SessionSettings(listen_host="::1", listen_port=7000, bootstrap_nodes=())
    assert session.settings_pack(settings)["listen_interfaces"] == "[::1]:7000"


async def test_a_loopback_session_listens_reports_stats_and_closes() -> None:
    async with session.open_session(session.SessionSettings.loopback()) as dht:
        host, port = dht.endpoint
        assert host == "127.0.0.1"
        assert port > 0
        stats = await dht.stats()
        assert "dht.dht_nodes" in stats
        # Two callers at once share one stats alert.
        counts = await asyncio.gather(dht.dht_node_count(), dht.dht_node_count())
        assert list(counts) == [0, 0]
        assert dht.routing_table() == []
    with pytest.raises(RuntimeError, match="closed"):
        _ = dht.native
    await dht.close()  # a second close does nothing


async def test_a_failing_alert_handler_does_not_stop_the_pump() -> None:
    async with session.open_session(session.SessionSettings.loopback()) as dht:
        calls: list[str] = []

        def broken(_alert: lt.session_stats_alert) -> None:
            calls.append("broken")
            raise RuntimeError("handler bug")

        unsubscribe = dht.alerts.subscribe(lt.session_stats_alert, broken)
        await dht.stats()
        unsubscribe()
        await dht.stats()  # still pumping
        assert calls == ["broken"]


async def test_malformed_magnets_are_refused() -> None:
    async with session.open_session(session.SessionSettings.loopback()) as dht:
        fetch = fetcher.MetadataFetcher(dht)
        with pytest.raises(errors.MalformedMagnet):
            await fetch.fetch_magnet("magnet:?dn=no-hash")
        with pytest.raises(ValueError, match="20 bytes"):
            await fetch.fetch(b"short")
        await fetch.aclose()
