"""The syllabus: fetched from a URL through the SSRF guard with size, time and type caps, or
uploaded as a PDF judged by its bytes; every refusal a typed 422 with its reason."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core import netguard
from keel.roadmaps import syllabus
from keel.roadmaps.syllabus.pdf import PdfLimits
from tests.core.netfakes import (
    PUBLIC_IP,
    Reply,
    RoutedNetwork,
    dns,
    loopback_server,
    rebinding_dns,
)
from tests.core.test_ssrf_corpus import corpus_dns, corpus_urls
from tests.roadmaps import pdfs

SYLLABUS_HTML = b"""<!doctype html>
<html><head><title>Data 101 \xe2\x80\x94 Syllabus</title>
<style>body { color: red }</style><script>var secret = "not text";</script></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Week 1:   SQL SELECT basics</h1>
<p>Read <b>chapter 1</b>,
   then practise.</p>
<ul><li>Filtering with WHERE</li><li>  Sorting  </li><li></li></ul>
<h2>Week 2</h2><ol><li>Joins</li></ol>
<noscript>Enable JavaScript</noscript>
<p>caf&eacute; &amp; r&#233;sum&#x00e9;\xe2\x80\x8b</p>
</body></html>"""
SYLLABUS_LINES = [
    "Data 101 \u2014 Syllabus",
    "Home",
    "Week 1: SQL SELECT basics",
    "Read chapter 1, then practise.",
    "- Filtering with WHERE",
    "- Sorting",
    "Week 2",
    "- Joins",
    "caf\u00e9 & r\u00e9sum\u00e9",  # the zero-width space is gone
]
VALID_PDF = pdfs.text_pdf("Week 1: SQL SELECT basics", "Week 2: Joins")
SMALL = syllabus.FetchLimits(max_bytes=64 * 1024, total_seconds=2.0)


_HTML = {"Content-Type": "text/html; charset=utf-8"}
PAGES = {
    "/syllabus": Reply(headers=_HTML, body=SYLLABUS_HTML),
    "/latin1": Reply(
        headers={"Content-Type": "text/plain; charset=ISO-8859-1"},
        body="Week 1: caf\u00e9\r\n\r\n  Week 2\tjoins ".encode("latin-1"),
    ),
    "/bogus-charset": Reply(
        headers={"Content-Type": "text/plain; charset=no-such-codec"}, body=b"plain"
    ),
    "/doc.pdf": Reply(headers={"Content-Type": "application/pdf"}, body=VALID_PDF),
    "/download": Reply(headers={"Content-Type": "application/octet-stream"}, body=VALID_PDF),
    "/fake.pdf": Reply(headers={"Content-Type": "application/pdf"}, body=b"<html>not a pdf</html>"),
    "/js.pdf": Reply(
        headers={"Content-Type": "application/pdf"},
        body=pdfs.text_pdf("x", tweak=pdfs.open_action(pdfs.launch_action("calc.exe"))),
    ),
    "/image": Reply(headers={"Content-Type": "image/png"}, body=b"\x89PNG\r\n\x1a\n"),
    "/untyped": Reply(body=b"what am I"),
    "/gzip": Reply(
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}, body=b"\x1f\x8b"
    ),
    "/empty": Reply(headers=_HTML, body=b"<html><script>only()</script></html>"),
    "/declared-huge": Reply(
        headers={**_HTML, "Content-Length": str(10**9)}, body=b"<p>small really</p>"
    ),
    "/slow": Reply(headers=_HTML, body=b"<p>", chunks=[b"x"] * 50, pause=0.1),
    "/missing": Reply(status=404, headers=_HTML, body=b"<p>no</p>"),
    "/moved": Reply(status=301, headers={"Location": "/syllabus"}),
}


def _site(path: str) -> Reply:
    route, _, query = path.partition("?")
    if route == "/endless":  # no Content-Length: the body runs until the server closes
        return Reply(headers=_HTML, chunks=iter(lambda: b"<p>more</p>" * 1000, None))
    if route == "/hop":  # redirects forever
        return Reply(status=302, headers={"Location": f"/hop?{int(query or 0) + 1}"})
    return PAGES.get(route, Reply(status=404))


@pytest.fixture
def site() -> Iterator[tuple[RoutedNetwork, list[str]]]:
    """syllabus.example, a "public" site (the loopback server): the network the fetch may
    use, and the paths the site was asked for."""
    with loopback_server(_site) as server:
        yield RoutedNetwork({PUBLIC_IP: server.port}), server.paths


async def _fetch(
    network: RoutedNetwork, path: str, limits: syllabus.FetchLimits = SMALL
) -> syllabus.SyllabusText:
    lookup = dns({"syllabus.example": [PUBLIC_IP]}, [])
    return await syllabus.fetch_syllabus(
        f"http://syllabus.example{path}", limits=limits, lookup=lookup, network=network
    )


# --- fetching --------------------------------------------------------------------------------


async def test_an_html_syllabus_becomes_lines_of_text(
    site: tuple[RoutedNetwork, list[str]],
) -> None:
    network, _paths = site
    result = await _fetch(network, "/syllabus")
    assert result.text.split("\n") == SYLLABUS_LINES
    assert "secret" not in result.text
    assert "red" not in result.text
    assert "Enable JavaScript" not in result.text
    assert result.kind == "html"
    assert result.source == "http://syllabus.example/syllabus"
    assert result.truncated is False


async def test_plain_text_is_decoded_by_its_charset_and_tidied(
    site: tuple[RoutedNetwork, list[str]],
) -> None:
    network, _paths = site
    latin1 = await _fetch(network, "/latin1")
    assert (latin1.kind, latin1.text) == ("text", "Week 1: caf\u00e9\nWeek 2 joins")
    assert (await _fetch(network, "/bogus-charset")).text == "plain"


async def test_a_pdf_by_url_is_checked_and_read(site: tuple[RoutedNetwork, list[str]]) -> None:
    network, _paths = site
    for path in ("/doc.pdf", "/download"):
        result = await _fetch(network, path)
        assert result.kind == "pdf"
        assert result.text == "Week 1: SQL SELECT basics\nWeek 2: Joins"
        assert result.pages == 2
    with pytest.raises(syllabus.NotAPdf):
        await _fetch(network, "/fake.pdf")  # its Content-Type is not believed
    with pytest.raises(syllabus.PdfActiveContent):
        await _fetch(network, "/js.pdf")


async def test_a_long_page_is_cut_at_the_character_cap(
    site: tuple[RoutedNetwork, list[str]],
) -> None:
    network, _paths = site
    result = await _fetch(network, "/syllabus", syllabus.FetchLimits(max_chars=40))
    assert result.truncated is True
    assert len(result.text) <= 40
    assert result.text.startswith("Data 101 \u2014 Syllabus\nHome")


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/image", "image/png"), ("/untyped", "none")],
)
async def test_other_content_types_are_refused_unread(
    site: tuple[RoutedNetwork, list[str]], path: str, reason: str
) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusUnsupportedType) as info:
        await _fetch(network, path)
    assert info.value.reason == reason
    assert info.value.status == 422


async def test_compressed_content_is_refused(site: tuple[RoutedNetwork, list[str]]) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusUnsupportedType, match="gzip"):
        await _fetch(network, "/gzip")


async def test_a_page_without_text_is_refused(site: tuple[RoutedNetwork, list[str]]) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusEmpty):
        await _fetch(network, "/empty")


@pytest.mark.parametrize("path", ["/declared-huge", "/endless"])
async def test_a_body_over_the_size_cap_is_abandoned(
    site: tuple[RoutedNetwork, list[str]], path: str
) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusTooLarge, match="65536 bytes"):
        await _fetch(network, path)


async def test_a_slow_page_is_abandoned_at_the_time_cap(
    site: tuple[RoutedNetwork, list[str]],
) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusTimedOut, match=r"0\.3 s"):
        await _fetch(network, "/slow", syllabus.FetchLimits(total_seconds=0.3))


async def test_an_http_error_is_reported(site: tuple[RoutedNetwork, list[str]]) -> None:
    network, _paths = site
    with pytest.raises(syllabus.SyllabusUnreachable, match="HTTP 404") as info:
        await _fetch(network, "/missing")
    assert info.value.reason == "404"


async def test_redirects_are_followed_up_to_the_limit(
    site: tuple[RoutedNetwork, list[str]],
) -> None:
    network, paths = site
    assert (await _fetch(network, "/moved")).source == "http://syllabus.example/syllabus"
    paths.clear()
    with pytest.raises(syllabus.SyllabusTooManyRedirects, match="more than 5"):
        await _fetch(network, "/hop")
    assert paths == ["/hop", *(f"/hop?{n}" for n in range(1, 6))]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://syllabus.example/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://user:pw@syllabus.example/",
        "http://syllabus.example/" + "a" * 2048,
        "http://[::1/",
        "syllabus.example/no-scheme",
    ],
)
async def test_urls_that_are_not_plain_http_are_refused(url: str) -> None:
    network = RoutedNetwork({})
    with pytest.raises(syllabus.SyllabusUrlRefused):
        await syllabus.fetch_syllabus(url, lookup=dns({}, []), network=network)
    assert network.connects == []


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(syllabus.SyllabusUrlRefused, match="does not resolve"):
        await syllabus.fetch_syllabus("http://nowhere.example/", lookup=dns({}, []))


async def test_a_failing_resolver_is_reported_as_unreachable() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise netguard.UnresolvableHost(host, "resolver timed out", transient=True)

    with pytest.raises(syllabus.SyllabusUnreachable):
        await syllabus.fetch_syllabus("http://syllabus.example/", lookup=broken)


# --- the SSRF corpus through the fetch --------------------------------------------------------


@pytest.mark.parametrize("case", [case for case, _url, _reason in corpus_urls(0)])
async def test_the_ssrf_corpus_is_refused_by_the_fetch(case: str) -> None:
    [(url, reason)] = [(u, r) for c, u, r in corpus_urls(8080) if c == case]
    network = RoutedNetwork({})
    with pytest.raises(syllabus.SyllabusUrlRefused) as info:
        await syllabus.fetch_syllabus(url, lookup=corpus_dns([]), network=network)
    assert info.value.reason is not None
    assert reason in info.value.reason
    assert info.value.code == "syllabus_url_refused"
    assert network.connects == []


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",
        "http://0177.0.0.1:{port}/secret",  # httpx cannot parse it; the policy still names it
        "http://0x7f000001:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://loopback.example:{port}/secret",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/_",
    ],
)
async def test_a_redirect_to_an_internal_address_is_refused(location: str) -> None:
    def site(path: str) -> Reply:
        if path == "/start":
            return Reply(status=302, headers={"Location": location.format(port=port)})
        return Reply(body=b"internal secret")

    with loopback_server(site) as server:
        port = server.port
        network = RoutedNetwork({PUBLIC_IP: port})
        lookup = dns({"syllabus.example": [PUBLIC_IP], "loopback.example": ["127.0.0.1"]}, [])
        with pytest.raises(syllabus.SyllabusUrlRefused):
            await syllabus.fetch_syllabus(
                "http://syllabus.example/start", lookup=lookup, network=network
            )
    assert network.connects == [(PUBLIC_IP, 80)]
    assert server.paths == ["/start"]


async def test_dns_rebinding_between_hops_never_reaches_loopback() -> None:
    # The first connection resolves to the public address; the redirect to the same name
    # opens a new connection, whose lookup the attacker answers with loopback: refused.
    def site(path: str) -> Reply:
        return Reply(status=302, headers={"Location": "http://rebind.example/page"})

    with loopback_server(site) as server:
        network = RoutedNetwork({PUBLIC_IP: server.port})
        asked: list[str] = []
        lookup = rebinding_dns("rebind.example", [[PUBLIC_IP], ["127.0.0.1"]], asked)
        with pytest.raises(syllabus.SyllabusUrlRefused, match=r"loopback 127\.0\.0\.1"):
            await syllabus.fetch_syllabus(
                "http://rebind.example/start", lookup=lookup, network=network
            )
    assert asked == ["rebind.example", "rebind.example"]
    assert network.connects == [(PUBLIC_IP, 80)]
    assert server.paths == ["/start"]


# --- PDF uploads -------------------------------------------------------------------------------


def test_a_plain_pdf_passes_and_yields_its_text() -> None:
    result = syllabus.check_pdf(VALID_PDF, "../../etc/Data 101.pdf\x00.exe")
    assert result.text == "Week 1: SQL SELECT basics\nWeek 2: Joins"
    assert (result.kind, result.pages, result.truncated) == ("pdf", 2, False)
    assert result.source == "Data 101.pdf.exe"  # a label: no path, no control characters


def test_a_pdf_with_compressed_objects_passes() -> None:
    result = syllabus.check_pdf(pdfs.compressed_pdf("Week 3: indexes"), "x.pdf")
    assert result.text == "Week 3: indexes"


def test_a_pdf_opening_at_its_first_page_passes() -> None:
    # LaTeX (hyperref) writes /OpenAction [page /Fit] into most academic PDFs: not an action.
    result = syllabus.check_pdf(pdfs.text_pdf("Week 1", tweak=pdfs.fit_first_page), "x.pdf")
    assert result.text == "Week 1"


def test_names_inside_strings_are_not_active_content() -> None:
    data = pdfs.with_unlisted_object(
        VALID_PDF, b"<< /Title (About /JS and /AA) /URI (https://x.example/JS/AA) >>"
    )
    assert syllabus.check_pdf(data, "x.pdf").pages == 2


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def _hidden_object_stream(member: bytes) -> bytes:
    entries, data = pdfs.object_stream(member, first_number=98)
    return b"<< " + entries + b" >>\nstream\n" + data + b"\nendstream"


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


JS_ACTION = b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>"
REFUSED = [
    pytest.param(
        pdfs.text_pdf("x", tweak=pdfs.open_action(pdfs.uri_action("https://evil.example/"))),
        syllabus.PdfActiveContent,
        "/OpenAction",
        id="OpenAction opening a URL",
    ),
    pytest.param(
        pdfs.text_pdf("x", tweak=pdfs.open_action(pdfs.launch_action("calc.exe"))),
        syllabus.PdfActiveContent,
        "/Launch",
        id="OpenAction launching a program",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, JS_ACTION),
        syllabus.PdfActiveContent,
        "/JS, /JavaScript",
        id="JavaScript in an object nothing lists",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, b"<< /S /J#61vaScript /J#53 (x) >>"),
        syllabus.PdfActiveContent,
        "/JS, /JavaScript",
        id="JavaScript behind #xx-escaped names",
    ),
    pytest.param(
        pdfs.compressed_pdf("x", JS_ACTION),
        syllabus.PdfActiveContent,
        "/JS, /JavaScript",
        id="JavaScript compressed in a listed object stream",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, _hidden_object_stream(JS_ACTION)),
        syllabus.PdfActiveContent,
        "/JS, /JavaScript",
        id="JavaScript compressed in an object stream nothing lists",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, b"<< /Type /Page /AA << /O 5 0 R >> >>"),
        syllabus.PdfActiveContent,
        "/AA",
        id="additional actions",
    ),
    pytest.param(
        pdfs.text_pdf("x", tweak=pdfs.attach("run.exe", b"MZ")),
        syllabus.PdfActiveContent,
        "/EmbeddedFile, /EmbeddedFiles",
        id="embedded file",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, b"<< /Fields [] /XFA 7 0 R >>"),
        syllabus.PdfActiveContent,
        "/XFA",
        id="XFA form",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, b"<< /S /SubmitForm /F (https://evil.example) >>"),
        syllabus.PdfActiveContent,
        "/SubmitForm",
        id="form submission",
    ),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, b"<< /Subtype /RichMedia >>"),
        syllabus.PdfActiveContent,
        "/RichMedia",
        id="rich media",
    ),
    pytest.param(
        pdfs.text_pdf("x", tweak=lambda w: w.encrypt("secret")),
        syllabus.PdfEncrypted,
        None,
        id="encrypted",
    ),
    pytest.param(
        pdfs.text_pdf("x", tweak=lambda w: w.encrypt("")),
        syllabus.PdfEncrypted,
        None,
        id="encrypted with an empty password",
    ),
    pytest.param(VALID_PDF + _zip(), syllabus.PdfPolyglot, "trailing data", id="PDF+ZIP"),
    pytest.param(
        pdfs.with_unlisted_object(VALID_PDF, _stream(_zip())),
        syllabus.PdfPolyglot,
        "zip",
        id="a ZIP inside the PDF",
    ),
    pytest.param(
        VALID_PDF + b"<script>alert(1)</script>",
        syllabus.PdfPolyglot,
        "trailing data",
        id="script after %%EOF",
    ),
    pytest.param(
        b"<html><script>alert(1)</script></html>\n" + VALID_PDF,
        syllabus.PdfPolyglot,
        "prefix",
        id="HTML then PDF",
    ),
    pytest.param(
        b"<html><!--" + b"x" * 1100 + b"-->\n" + VALID_PDF,
        syllabus.NotAPdf,
        None,
        id="HTML then PDF beyond 1024 bytes",
    ),
    pytest.param(
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + VALID_PDF,
        syllabus.PdfPolyglot,
        "prefix",
        id="JPEG magic first",
    ),
    pytest.param(
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 2000 + b"PE\x00\x00",
        syllabus.NotAPdf,
        None,
        id="a renamed .exe",
    ),
    pytest.param(VALID_PDF[: len(VALID_PDF) // 2], syllabus.PdfUnreadable, None, id="truncated"),
    pytest.param(
        b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\n%%EOF\n",
        syllabus.PdfUnreadable,
        None,
        id="garbage between header and %%EOF",
    ),
    pytest.param(b"", syllabus.NotAPdf, None, id="empty"),
    pytest.param(pdfs.text_pdf(""), syllabus.SyllabusEmpty, None, id="no text (a scan)"),
]


@pytest.mark.parametrize(("data", "error", "reason"), REFUSED)
def test_a_hostile_or_broken_file_is_refused_with_its_reason(
    data: bytes, error: type[syllabus.SyllabusError], reason: str | None
) -> None:
    # The declared name (and a MIME type, which is not even an input) are not believed.
    with pytest.raises(error) as info:
        syllabus.check_pdf(data, "syllabus.pdf")
    assert type(info.value) is error
    assert info.value.reason == reason
    assert info.value.status == 422


def test_a_pdf_over_the_size_cap_is_refused_unparsed() -> None:
    with pytest.raises(syllabus.SyllabusTooLarge):
        syllabus.check_pdf(VALID_PDF, "x.pdf", limits=PdfLimits(max_bytes=len(VALID_PDF) - 1))


def test_a_pdf_with_too_many_pages_is_refused() -> None:
    with pytest.raises(syllabus.PdfTooManyPages, match="2 pages; at most 1"):
        syllabus.check_pdf(VALID_PDF, "x.pdf", limits=PdfLimits(max_pages=1))


def test_a_pdf_with_too_many_objects_is_refused() -> None:
    with pytest.raises(syllabus.PdfUnreadable, match="more than 3 objects"):
        syllabus.check_pdf(VALID_PDF, "x.pdf", limits=PdfLimits(max_objects=3))


def test_a_long_pdf_is_cut_at_the_character_cap() -> None:
    result = syllabus.check_pdf(VALID_PDF, "x.pdf", limits=PdfLimits(max_chars=10))
    assert (result.text, result.truncated) == ("Week 1: SQ", True)


def test_an_error_renders_as_a_422_problem_naming_its_reason() -> None:
    with pytest.raises(syllabus.PdfPolyglot) as info:
        syllabus.check_pdf(VALID_PDF + _zip(), "x.pdf")
    error = info.value
    assert (error.status, error.code, error.extra) == (
        422,
        "pdf_polyglot",
        {"reason": "trailing data"},
    )


def _check_never_raises_anything_else(data: bytes) -> None:
    try:
        result = syllabus.check_pdf(data, "fuzz.pdf")
    except syllabus.SyllabusError:
        return
    assert isinstance(result, syllabus.SyllabusText)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_raise_only_the_domain_error(data: bytes) -> None:
    _check_never_raises_anything_else(data)
    _check_never_raises_anything_else(b"%PDF-1.4\n" + data + b"\n%%EOF\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([VALID_PDF, pdfs.compressed_pdf("Week 3")]),
    st.integers(min_value=0, max_value=len(VALID_PDF)),
    st.integers(min_value=0, max_value=64),
    st.binary(max_size=64),
)
def test_a_damaged_pdf_raises_only_the_domain_error(
    pdf: bytes, at: int, cut: int, patch: bytes
) -> None:
    _check_never_raises_anything_else(pdf[:at] + patch + pdf[at + cut :])


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_html_to_text_never_raises(html: str) -> None:
    text, _truncated = syllabus.html_to_text(html)
    assert "\x00" not in text
