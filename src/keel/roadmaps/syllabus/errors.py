"""Why a syllabus was refused. Each is a 422 problem with a stable ``code``; ``detail`` says
what to fix, ``reason`` (where present) what exactly was found.

SyllabusError                 the goal's syllabus cannot be used (422)
├── SyllabusUrlRefused        not an http(s) URL, credentials in it, or an internal
│                             destination (the SSRF policy's reason is kept)
├── SyllabusUnreachable       the connection failed, or the page answered an HTTP error
├── SyllabusTimedOut          the whole fetch, redirects included, took too long
├── SyllabusTooManyRedirects  more redirects than allowed
├── SyllabusTooLarge          the page or the file is over the size cap
├── SyllabusUnsupportedType   neither HTML, plain text nor PDF
├── SyllabusEmpty             no text in it (a scanned PDF, an empty page)
└── PdfRefused                the file is not a PDF we accept
    ├── NotAPdf               no ``%PDF-`` header in the first 1024 bytes
    ├── PdfPolyglot           it is also another format (see ``pdf.py``)
    ├── PdfUnreadable         pypdf cannot parse it, or it is too complex to check
    ├── PdfEncrypted          encrypted (we could not check what it contains)
    ├── PdfActiveContent      JavaScript, launch or form-submit actions, embedded files...
    └── PdfTooManyPages       more pages than allowed
"""

from __future__ import annotations

from keel.core.errors import Unprocessable


class SyllabusError(Unprocessable):
    """The syllabus cannot be used."""

    code = "syllabus_invalid"
    title = "Syllabus refused"

    def __init__(self, detail: str | None = None, *, reason: str | None = None) -> None:
        extra = {} if reason is None else {"reason": reason}
        super().__init__(detail, **extra)
        self.reason = reason


class SyllabusUrlRefused(SyllabusError):
    """The syllabus URL is not allowed: use a public http(s) address."""

    code = "syllabus_url_refused"


class SyllabusUnreachable(SyllabusError):
    """The syllabus page could not be fetched."""

    code = "syllabus_unreachable"


class SyllabusTimedOut(SyllabusError):
    """The syllabus page took too long to fetch."""

    code = "syllabus_timed_out"


class SyllabusTooManyRedirects(SyllabusError):
    """The syllabus URL redirects too many times."""

    code = "syllabus_too_many_redirects"


class SyllabusTooLarge(SyllabusError):
    """The syllabus is larger than allowed."""

    code = "syllabus_too_large"


class SyllabusUnsupportedType(SyllabusError):
    """The syllabus is not HTML, plain text or PDF."""

    code = "syllabus_unsupported_type"


class SyllabusEmpty(SyllabusError):
    """No text could be read from the syllabus."""

    code = "syllabus_empty"


class PdfRefused(SyllabusError):
    """The PDF is not accepted."""

    code = "pdf_refused"


class NotAPdf(PdfRefused):
    """The file is not a PDF."""

    code = "pdf_not_a_pdf"


class PdfPolyglot(PdfRefused):
    """The file is a PDF and another format at once."""

    code = "pdf_polyglot"


class PdfUnreadable(PdfRefused):
    """The PDF cannot be read."""

    code = "pdf_unreadable"


class PdfEncrypted(PdfRefused):
    """The PDF is encrypted; upload an unprotected copy."""

    code = "pdf_encrypted"


class PdfActiveContent(PdfRefused):
    """The PDF contains active content (scripts, actions or embedded files)."""

    code = "pdf_active_content"


class PdfTooManyPages(PdfRefused):
    """The PDF has more pages than allowed."""

    code = "pdf_too_many_pages"
