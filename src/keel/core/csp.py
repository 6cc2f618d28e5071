"""A fresh CSP nonce per request, a strict Content-Security-Policy and the browser security
headers that :class:`keel.core.app.RequestContextMiddleware` does not already set.

HTML responses get a nonce-based policy (CSP level 3, "strict CSP"): a ``<script>`` runs only
if it carries this response's nonce, and scripts it loads inherit the trust
(``'strict-dynamic'``); there is no ``'unsafe-inline'``/``'unsafe-eval'`` and no host
allow-list to bypass. Injected markup therefore cannot run script even where sanitising
failed. Templates read the nonce from ``request.state.csp_nonce``::

    <script nonce="{{ csp_nonce }}" src="..."></script>
    <style nonce="{{ csp_nonce }}">...</style>

Other responses (JSON, problem+json, files) get a policy that allows nothing, so a response
opened as a document by mistake cannot run or embed anything. A response that already
carries a Content-Security-Policy (the API docs, a page with a hash-based policy) keeps it.

Set elsewhere, not repeated here: ``X-Content-Type-Options``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer`` (stricter than ``strict-origin-when-cross-origin``) by
``RequestContextMiddleware``.
"""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_STATE_KEY = "csp_nonce"
# The policy for anything that is not an HTML page (OWASP's advice for APIs).
NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
_NONCE_BYTES = 16  # 128 bits, as CSP 3 recommends


def new_nonce() -> str:
    """A nonce for one response: 128 random bits, URL-safe base64 (a valid CSP base64-value)."""
    return secrets.token_urlsafe(_NONCE_BYTES)


def html_policy(nonce: str, *, https: bool = False) -> str:
    """The Content-Security-Policy of an HTML page whose scripts and inline styles carry
    ``nonce``. With ``https`` browsers also upgrade any http:// subresource."""
    directives = [
        "default-src 'self'",
        f"script-src 'nonce-{nonce}' 'strict-dynamic'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        "connect-src 'self'",  # fetch and the progress EventSource: this origin only
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
    if https:
        directives.append("upgrade-insecure-requests")
    return "; ".join(directives)


class SecurityHeadersMiddleware:
    """Gives each HTTP request a nonce in ``scope["state"]`` (``request.state.csp_nonce``) and
    adds the CSP, ``Permissions-Policy`` and ``Cross-Origin-Opener-Policy`` (and, with
    ``hsts_max_age`` > 0, ``Strict-Transport-Security``) to its response. Headers the
    response already has are left alone."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int = 0) -> None:
        if hsts_max_age < 0:
            raise ValueError("hsts_max_age must be >= 0 seconds")
        self.app = app
        self.hsts_max_age = hsts_max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = new_nonce()
        # The dict request.state reads and writes (as Starlette's Request does): the server
        # gives each request its own copy, and middleware around us sees the same one.
        scope.setdefault("state", {})[NONCE_STATE_KEY] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(list(message.get("headers", [])), nonce)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, headers: list[tuple[bytes, bytes]], nonce: str) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        is_html = content_type.lower().startswith(b"text/html")
        https = self.hsts_max_age > 0
        wanted = {
            b"content-security-policy": html_policy(nonce, https=https)
            if is_html
            else NON_HTML_POLICY,
            b"permissions-policy": PERMISSIONS_POLICY,
            b"cross-origin-opener-policy": "same-origin",
        }
        if https:
            # No includeSubDomains: a self-hosted instance does not own its sibling hosts.
            wanted[b"strict-transport-security"] = f"max-age={self.hsts_max_age}"
        for name, value in wanted.items():
            if name not in present:
                headers.append((name, value.encode("ascii")))
        return headers
