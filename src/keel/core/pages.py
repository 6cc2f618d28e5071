"""The HTML pages core serves people: the front door at ``/`` (what this server runs, built from
the mounted products and the links each declares) and the 404 page a browser gets where an API
client gets problem+json. Other core pages (``keel.core.status``) render through :func:`render`.

Which of the two a 404 is, is decided by :func:`prefers_html` on the ``Accept`` header, only
when a 404 is rendered: a successful request never pays for it. The pages have no script; their
one inline stylesheet is allowed by its hash in the Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from keel.core.logging import request_id_var

HERE = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(HERE))

# Our own file, inlined unescaped (base.html) and allowed by its hash.
_CSS = (HERE / "pages.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# What RequestContextMiddleware adds inside a product; the root has no such middleware.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Link:
    """A page a product offers people, listed on the front door.

    ``path`` is under the product's mount (``"/"`` is its root). A path with a
    ``{placeholder}`` (``/pay/{payment_id}``) is shown as text, not linked; ``note`` says
    where a real one comes from.
    """

    title: str
    path: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the front door: ``href`` is set when the link can be followed."""

    title: str
    path: str
    href: str | None
    note: str


@dataclass(frozen=True, slots=True)
class Listing:
    """A mounted product as the front door shows it."""

    name: str
    description: str
    links: tuple[Link, ...]


def front_door(request: Request, listings: Sequence[Listing]) -> HTMLResponse:
    """The page at ``/``: each product with its pages and API docs, then the probes."""
    home = request.base_url.path  # the server's root, "/" unless behind a prefix
    products = [
        {
            "name": listing.name,
            "description": listing.description,
            "links": [_entry(home, listing.name, link) for link in listing.links],
        }
        for listing in listings
    ]
    operations = [
        Entry("/healthz", "healthz", f"{home}healthz", "liveness"),
        Entry("/readyz", "readyz", f"{home}readyz", "readiness of every product"),
        Entry("/metrics", "metrics", f"{home}metrics", "Prometheus metrics"),
    ]
    return render(request, "front_door.html", {"products": products, "operations": operations})


def _entry(home: str, product: str, link: Link) -> Entry:
    path = f"{home}{product}{link.path}"
    return Entry(link.title, path, None if "{" in link.path else path, link.note)


def not_found(request: Request, detail: str) -> HTMLResponse:
    """The 404 page: the path asked for, the detail when it says more than "Not Found", a way
    home, and the request id when one was given (inside a product, where it is logged)."""
    context = {
        "path": request.url.path,
        "detail": "" if detail.lower() == "not found" else detail,
        "home": request.base_url.path,
        "request_id": request_id_var.get(),
    }
    response = render(request, "not_found.html", context, status_code=404)
    response.headers["Vary"] = "Accept"
    return response


def render(
    request: Request, name: str, context: Mapping[str, object], *, status_code: int = 200
) -> HTMLResponse:
    """Template ``name`` of core's pages (they extend ``base.html``: no script, the one
    stylesheet allowed by its hash), not to be cached."""
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
    if request_id_var.get() is None:  # outside every product's RequestContextMiddleware
        headers.update(SECURITY_HEADERS)
    response = templates.TemplateResponse(
        request,
        name,
        {**context, "css": _CSS},
        status_code=status_code,
        headers=headers,
    )
    assert isinstance(response, HTMLResponse)
    return response


def prefers_html(accept: str) -> bool:
    """Whether a client sending this ``Accept`` wants an HTML page rather than problem+json.

    It must name ``text/html`` (or ``text/*``) with a q-value above zero and at least as high
    as any it gives problem+json or JSON; ``*/*`` alone (curl, most libraries) or no header
    at all is an API client. As HTTP says, the most specific range that matches a type sets
    its q-value (``text/html;q=0, */*`` refuses HTML).
    """
    ranges = _parse_accept(accept)
    html = _quality(ranges, "text", "html")
    if html is None or html[1] == 0 or html[0] <= 0:
        return False
    api = max(
        (q[0] for sub in ("problem+json", "json") if (q := _quality(ranges, "application", sub))),
        default=0.0,
    )
    return html[0] >= api


_MAX_RANGES = 64  # a browser sends fewer than ten; past this the rest is ignored


def _parse_accept(accept: str) -> list[tuple[str, str, float]]:
    """``(type, subtype, q)`` for each well-formed media range of an ``Accept`` header."""
    ranges = []
    for part in accept.split(",", _MAX_RANGES)[:_MAX_RANGES]:
        media, *params = part.split(";")
        kind, slash, sub = media.strip().lower().partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:  # also drops NaN
            ranges.append((kind, sub, q))
    return ranges


def _quality(ranges: list[tuple[str, str, float]], kind: str, sub: str) -> tuple[float, int] | None:
    """The q-value of ``kind/sub`` under ``ranges`` and how specific its range was (2 exact,
    1 ``kind/*``, 0 ``*/*``); None when no range matches."""
    best: tuple[float, int] | None = None
    for r_kind, r_sub, q in ranges:
        if r_kind == kind and r_sub == sub:
            specificity = 2
        elif r_kind == kind and r_sub == "*":
            specificity = 1
        elif r_kind == "*" and r_sub == "*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[1] or (specificity == best[1] and q > best[0]):
            best = (q, specificity)
    return best
