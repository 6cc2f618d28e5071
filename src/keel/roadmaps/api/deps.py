"""The wired product, and the request limit, as route dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from keel.core import ratelimit_http
from keel.core.identity import web as identity_web
from keel.roadmaps.bootstrap import Roadmaps


def wired(request: Request) -> Roadmaps:
    roadmaps: Roadmaps = request.app.state.roadmaps
    return roadmaps


Wired = Annotated[Roadmaps, Depends(wired)]


async def rate_limited(request: Request) -> None:
    """Counts the request against its user's limit (its client address's when signed out), in
    the shared cache (two Redis providers with failover, or this process's memory): 429 past
    it."""
    roadmaps = wired(request)
    user = identity_web.optional_user(request)
    who = f"user:{user.id}" if user is not None else f"ip:{identity_web.client_address(request)}"
    await ratelimit_http.enforce(
        request,
        roadmaps.limiter,
        {f"api:{who}": roadmaps.settings.rate_limit_api},
        app="roadmaps",
    )
