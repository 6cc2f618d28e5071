"""The coturn fixture is a real TURN server: a client holding REST-style credentials made with
its shared secret gets a relay address on loopback, over UDP and TCP; one made with another
secret is refused. (The credentials the pairux server issues are tested against it in the
end-to-end run.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest
from aioice import turn
from aioice.stun import TransactionFailed

from tests.pairux.coturn import Coturn, coturn  # noqa: F401  (the fixture)


def rest_credentials(secret: str, ident: str, ttl: int = 600) -> tuple[str, str]:
    """The TURN REST API's credentials, from its definition: ``<expiry>:<id>`` and
    base64(HMAC-SHA1(secret, username))."""
    username = f"{int(time.time()) + ttl}:{ident}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_client_with_the_secrets_credentials_gets_a_loopback_relay(
    coturn: Coturn,  # noqa: F811
    transport: str,
) -> None:
    username, password = rest_credentials(coturn.secret, "viewer-1")
    relayed, _ = await asyncio.wait_for(
        turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            ("127.0.0.1", coturn.port),
            username,
            password,
            transport=transport,
        ),
        timeout=5,
    )
    try:
        host, port = relayed.get_extra_info("sockname")
        assert host == "127.0.0.1"
        assert port > 0
    finally:
        relayed.close()


@pytest.mark.parametrize(
    ("secret", "ttl"),
    [("not-the-secret", 600), (None, -60)],  # another secret; the right one, expired
)
async def test_wrong_or_expired_credentials_are_refused(
    coturn: Coturn,  # noqa: F811
    secret: str | None,
    ttl: int,
) -> None:
    username, password = rest_credentials(secret or coturn.secret, "viewer-2", ttl)
    with pytest.raises(TransactionFailed, match=r"401|Unauthorized"):
        await asyncio.wait_for(
            turn.create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, password
            ),
            timeout=5,
        )
