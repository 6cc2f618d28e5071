"""A syllabus page fetched from a URL a user typed: through the core SSRF guard, capped.

Every connection is made by :func:`keel.core.netguard.guarded_client`, which resolves the
host once, refuses it unless every address is public and connects to the address it vetted
(so a DNS answer cannot change between the check and the connect). Redirects are followed
here, one hop at a time (up to ``max_redirects``): each hop is a new request the guard vets
again, and a redirect's body is never read (httpx's own following reads it whole, unbounded,
and gives up on a Location it cannot parse before the policy can name the address).
The body is streamed and abandoned past ``max_bytes``; the whole fetch, redirects included,
is bounded by ``total_seconds`` (a PDF check already running in its thread finishes on its
own; pypdf cannot be interrupted). Only HTML, plain text and PDF are read; a PDF goes
through :func:`~keel.roadmaps.syllabus.pdf.check_pdf` like an upload.
"""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass

import httpcore
import httpx

from keel.core import netguard
from keel.roadmaps.syllabus import pdf
from keel.roadmaps.syllabus.errors import (
    SyllabusEmpty,
    SyllabusTimedOut,
    SyllabusTooLarge,
    SyllabusTooManyRedirects,
    SyllabusUnreachable,
    SyllabusUnsupportedType,
    SyllabusUrlRefused,
)
from keel.roadmaps.syllabus.text import (
    MAX_CHARS,
    SyllabusKind,
    SyllabusText,
    html_to_text,
    tidy_text,
)

MAX_URL_CHARS = 2048
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML = frozenset({"text/html", "application/xhtml+xml"})
_TEXT = frozenset({"text/plain"})
# A PDF is judged by its bytes; servers often label a download as a generic binary.
_PDF = frozenset({"application/pdf", "application/x-pdf", "application/octet-stream"})
_USER_AGENT = "KeelRoadmaps/1.0 (syllabus fetch)"


@dataclass(frozen=True)
class FetchLimits:
    """Caps on one syllabus fetch: body bytes, total seconds, redirects, text characters."""

    max_bytes: int = 5 * 2**20
    total_seconds: float = 15.0
    max_redirects: int = 5
    max_chars: int = MAX_CHARS


async def fetch_syllabus(
    url: str,
    *,
    limits: FetchLimits = FetchLimits(),
    lookup: netguard.Lookup = netguard.system_lookup,
    network: httpcore.AsyncNetworkBackend | None = None,
) -> SyllabusText:
    """The text of the syllabus at ``url`` (HTML or plain text as lines, or a PDF's text).

    ``lookup`` and ``network`` are the guard's DNS and socket layers (tests replace them;
    every address still passes the SSRF policy). Raises a
    :class:`~keel.roadmaps.syllabus.errors.SyllabusError`: the URL refused (with the
    policy's reason), unreachable, too slow, too large, too many redirects, an
    unsupported type, no text, or any PDF refusal.
    """
    client = netguard.guarded_client(
        timeout=limits.total_seconds,
        lookup=lookup,
        network=network,
        headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
        event_hooks={"response": [_stop_at_redirects]},
    )
    try:
        async with client, asyncio.timeout(limits.total_seconds):
            return await _follow(client, await _parse(url), limits)
    except TimeoutError as exc:
        raise SyllabusTimedOut(
            f"The syllabus took longer than {limits.total_seconds:g} s to fetch"
        ) from exc
    except netguard.BlockedDestination as exc:
        raise SyllabusUrlRefused(
            f"The syllabus URL points to a destination that is not allowed ({exc.reason})",
            reason=exc.reason,
        ) from exc
    except httpx.TimeoutException as exc:
        raise SyllabusTimedOut("The syllabus server did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise SyllabusUnreachable(
            f"The syllabus could not be fetched ({type(exc).__name__})"
        ) from exc


async def _parse(url: str) -> httpx.URL:
    """``url`` as the client will read it, refused unless it is plain http(s)."""
    if len(url) > MAX_URL_CHARS:
        raise SyllabusUrlRefused(f"The syllabus URL is longer than {MAX_URL_CHARS} characters")
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        # httpx refuses some hosts a browser reads as an address (0177.0.0.1): the policy
        # names that address, so the refusal says why. It raises for any URL httpx refuses.
        await netguard.vet_url(url)
        raise SyllabusUrlRefused(f"The syllabus URL is not valid ({exc})") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise SyllabusUrlRefused("The syllabus URL must be an http:// or https:// address")
    if target.userinfo:
        raise SyllabusUrlRefused("The syllabus URL must not carry a user name or password")
    return target


class _Redirect(Exception):
    """A redirect, raised from the response hook before httpx parses its Location (httpx
    refuses some a browser follows, such as 0177.0.0.1, and we want the policy's verdict)
    and before anything reads its body."""

    def __init__(self, base: httpx.URL, location: str) -> None:
        super().__init__(location)
        self.base = base
        self.location = location


async def _stop_at_redirects(response: httpx.Response) -> None:
    if response.status_code in _REDIRECTS and "location" in response.headers:
        raise _Redirect(response.url, response.headers["location"])


async def _follow(client: httpx.AsyncClient, url: httpx.URL, limits: FetchLimits) -> SyllabusText:
    for _hop in range(limits.max_redirects + 1):
        try:
            async with client.stream("GET", url) as response:
                if not response.is_success:
                    raise SyllabusUnreachable(
                        f"The syllabus page answered HTTP {response.status_code}",
                        reason=str(response.status_code),
                    )
                media_type, charset = _content_type(response)
                body = await _read_capped(response, limits.max_bytes)
                return await _to_text(body, media_type, charset, str(response.url), limits)
        except _Redirect as redirect:
            url = await _redirect_target(redirect.base, redirect.location)
    raise SyllabusTooManyRedirects(
        f"The syllabus URL redirects more than {limits.max_redirects} times"
    )


async def _redirect_target(base: httpx.URL, location: str) -> httpx.URL:
    try:
        target = str(base.join(location))
    except httpx.InvalidURL:
        target = location  # judged (and refused) by _parse, with the policy's reason
    return await _parse(target)


def _content_type(response: httpx.Response) -> tuple[str, str | None]:
    media_type, _, parameters = response.headers.get("content-type", "").partition(";")
    media_type = media_type.strip().lower()
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        # We asked for identity; decompressing a stranger's body is a bomb waiting to go off.
        raise SyllabusUnsupportedType(f"The syllabus server sent {encoding}-compressed content")
    if media_type not in _HTML | _TEXT | _PDF:
        raise SyllabusUnsupportedType(
            f"The syllabus is {media_type or 'of no declared type'}; "
            "use an HTML page, plain text or a PDF",
            reason=media_type[:100] or "none",
        )
    charset = None
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type, charset


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SyllabusTooLarge(f"The syllabus is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > max_bytes:
            raise SyllabusTooLarge(f"The syllabus is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _to_text(
    body: bytes, media_type: str, charset: str | None, source: str, limits: FetchLimits
) -> SyllabusText:
    if media_type in _PDF:
        pdf_limits = pdf.PdfLimits(max_bytes=limits.max_bytes, max_chars=limits.max_chars)
        return await asyncio.to_thread(pdf.check_pdf, body, source, limits=pdf_limits)
    decoded = body.decode(_codec(charset), errors="replace")
    kind: SyllabusKind = "html" if media_type in _HTML else "text"
    if kind == "html":
        text, truncated = html_to_text(decoded, max_chars=limits.max_chars)
    else:
        text, truncated = tidy_text(decoded, max_chars=limits.max_chars)
    if not text:
        raise SyllabusEmpty("The syllabus page has no text")
    return SyllabusText(text, source, kind, truncated=truncated)


def _codec(charset: str | None) -> str:
    """A codec Python knows for ``charset`` (UTF-8 when it names none or a bogus one)."""
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"
