"""Who is asking: the dependencies every roadmaps router takes, and the account service.

    async def dashboard(user: CurrentUser) -> ...      # 401, or a browser's GET to /login
    async def discover(user: OptionalUser) -> ...

The session cookie was resolved by ``keel.core.identity.web``'s middleware before any route
runs, so these read ``request.state`` and never touch the database.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request

from keel.core.identity import Accounts, User
from keel.core.identity import web as identity_web

CurrentUser = Annotated[User, Depends(identity_web.current_user)]
OptionalUser = Annotated[User | None, Depends(identity_web.optional_user)]

RESET_CONFIRM_ROUTE = "roadmaps-reset-confirm"


def accounts(request: Request) -> Accounts:
    found: Accounts = request.app.state.roadmaps.accounts
    return found


def reset_link(request: Request) -> Callable[[str], str]:
    """Makes the reset page's URL for a token. Its origin is ``public_url``; unset, the
    request's own only when that is a loopback address or localhost, since a Host header
    is the caller's to choose and a link to their host would hand them the token."""
    public = request.app.state.roadmaps.settings.public_url.rstrip("/")
    origin = public or _loopback_origin(request)
    path = path_to(request, RESET_CONFIRM_ROUTE)
    return lambda token: f"{origin}{path}?{urlencode({'token': token})}"


def mount_path(request: Request) -> str:
    """The prefix this app is mounted under (``/roadmaps`` in `keel serve`), no trailing slash."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def path_to(request: Request, route: str) -> str:
    """The path of a named route of this app, with the prefix it is mounted under."""
    return mount_path(request) + str(request.app.url_path_for(route))


def _loopback_origin(request: Request) -> str:
    host = request.url.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return f"{request.url.scheme}://{request.url.netloc}" if loopback else ""
