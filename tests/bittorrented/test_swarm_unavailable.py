"""A magnet that needs peers while our session cannot listen: a 503 problem, nothing stored."""

from __future__ import annotations

from pathlib import Path

import httpx

from keel.bittorrented.app import create_app
from keel.bittorrented.settings import BittorrentedSettings

# TEST-NET-1 (RFC 5737): an address no interface here holds, so every bind fails. (A taken
# port does not do it: libtorrent moves to the next free one, max_retry_port_bind.)
UNASSIGNED = "192.0.2.1"


async def test_a_magnet_when_the_session_cannot_listen_is_a_503_problem(tmp_path: Path) -> None:
    settings = BittorrentedSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bt.db'}",
        dht_listen_host=UNASSIGNED,
        dht_port=3334,
        dht_bootstrap=False,
        metadata_timeout_seconds=5,
    )
    product = create_app(settings)
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            reply = await client.post(
                "/api/magnets", json={"magnet": "magnet:?xt=urn:btih:" + "cd" * 20}
            )
            assert reply.status_code == 503, reply.text
            assert reply.headers["content-type"].startswith("application/problem+json")
            problem = reply.json()
            assert problem["code"] == "swarm_unavailable"
            assert UNASSIGNED not in reply.text  # our listen address is not the caller's
            search = await client.get("/api/search", params={"q": "anything"})
            assert search.json()["total"] == 0
