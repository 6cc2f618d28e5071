"""A goal's syllabus, from a URL or an uploaded PDF, reduced to text generation can read.

Both ways in treat the syllabus as hostile: the URL is fetched only through the core SSRF
guard with size and time caps, and a PDF is judged by its bytes and read only if it is a
plain document. Domain code: no FastAPI; every refusal is a
:class:`~keel.roadmaps.syllabus.errors.SyllabusError` (422 problem+json).

    fetch.py   fetch_syllabus(url): guarded, capped, redirects re-vetted hop by hop
    pdf.py     check_pdf(data, name): magic, polyglots, active content, pypdf, text
    text.py    SyllabusText; HTML and text reduced to lines
    errors.py  the refusals
"""

from __future__ import annotations

from keel.roadmaps.syllabus.errors import (
    NotAPdf,
    PdfActiveContent,
    PdfEncrypted,
    PdfPolyglot,
    PdfRefused,
    PdfTooManyPages,
    PdfUnreadable,
    SyllabusEmpty,
    SyllabusError,
    SyllabusTimedOut,
    SyllabusTooLarge,
    SyllabusTooManyRedirects,
    SyllabusUnreachable,
    SyllabusUnsupportedType,
    SyllabusUrlRefused,
)
from keel.roadmaps.syllabus.fetch import FetchLimits, fetch_syllabus
from keel.roadmaps.syllabus.pdf import PdfLimits, check_pdf
from keel.roadmaps.syllabus.text import SyllabusText, html_to_text

__all__ = [
    "FetchLimits",
    "NotAPdf",
    "PdfActiveContent",
    "PdfEncrypted",
    "PdfLimits",
    "PdfPolyglot",
    "PdfRefused",
    "PdfTooManyPages",
    "PdfUnreadable",
    "SyllabusEmpty",
    "SyllabusError",
    "SyllabusText",
    "SyllabusTimedOut",
    "SyllabusTooLarge",
    "SyllabusTooManyRedirects",
    "SyllabusUnreachable",
    "SyllabusUnsupportedType",
    "SyllabusUrlRefused",
    "check_pdf",
    "fetch_syllabus",
    "html_to_text",
]
