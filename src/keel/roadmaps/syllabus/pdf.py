"""An uploaded (or fetched) PDF syllabus: judged by its bytes, never by what the client says
it is, and read only if it is a plain document.

In order, each refusal a :class:`~keel.roadmaps.syllabus.errors.PdfRefused` (or
``SyllabusTooLarge``/``SyllabusEmpty``):

1. Size: over ``max_bytes`` is refused before anything is parsed.
2. Magic: ``%PDF-`` must appear in the first 1024 bytes (where readers look for it).
3. Polyglot: the file must be a PDF and nothing else. We define that as: (a) nothing but
   whitespace before ``%PDF-`` (a JPEG, ZIP, PE, HTML... header at offset 0 with the PDF
   behind it is what makes a file two formats at once, and no PDF writer puts bytes there);
   (b) nothing but whitespace after the last ``%%EOF`` (a ZIP or a script appended to a
   PDF); (c) the file does not open as a ZIP archive (a ZIP's directory is found from the
   end, so one can hide inside a PDF stream).
4. Active content, looked for three ways so a hidden object cannot escape: the raw bytes
   outside stream bodies, tokenised as PDF (names ``#xx``-decoded, strings and comments
   skipped); every object in the cross-reference tables, object streams decompressed; and
   every ``N G obj`` found in the raw bytes, parsed, so an object no table lists is seen
   too. Refused: ``/JavaScript``, ``/JS``, ``/AA``, ``/Launch``, ``/EmbeddedFile(s)``,
   ``/RichMedia``, ``/XFA``, ``/SubmitForm``, ``/ImportData``, ``/Encrypt``, and an
   ``/OpenAction`` that is anything but a plain "go to this page" (ADR 0034: LaTeX's
   hyperref writes ``/OpenAction [page /Fit]`` into most academic PDFs).
5. pypdf must parse it (pypdf's own resource limits tightened), unencrypted, with 1 to
   ``max_pages`` pages.

Then the text of its pages is extracted, up to ``max_chars`` characters.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
    read_object,
)

from keel.roadmaps.syllabus import pdf_names
from keel.roadmaps.syllabus.errors import (
    NotAPdf,
    PdfActiveContent,
    PdfEncrypted,
    PdfPolyglot,
    PdfTooManyPages,
    PdfUnreadable,
    SyllabusEmpty,
    SyllabusError,
    SyllabusTooLarge,
)
from keel.roadmaps.syllabus.text import MAX_CHARS, SyllabusText, tidy_text

PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024
EOF_MARKER = b"%%EOF"
_WHITESPACE = b"\x00\t\n\x0c\r "  # PDF's whitespace characters

# Names whose presence alone refuses the file.
ACTIVE_NAMES = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/AA",  # additional actions: run on page open, focus, keystroke...
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/RichMedia",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
    }
)
_RAW_NAMES = pdf_names.NameScanner(
    frozenset(name.encode() for name in ACTIVE_NAMES) | {b"/Encrypt"}
)


@dataclass(frozen=True)
class PdfLimits:
    """What a PDF syllabus may be: bytes, pages, extracted characters, objects walked."""

    max_bytes: int = 5 * 2**20
    max_pages: int = 200
    max_chars: int = MAX_CHARS
    max_objects: int = 20_000


# pypdf's defaults allow 75 MB out of one stream; a 5 MB syllabus needs far less.
_PYPDF_LIMITS: dict[str, Any] = {
    "maximum_declared_stream_length": 32 * 2**20,
    "zlib_maximum_output_length": 32 * 2**20,
    "lzw_maximum_output_length": 32 * 2**20,
    "run_length_maximum_output_length": 32 * 2**20,
    "array_based_stream_maximum_output_length": 32 * 2**20,
    "brotli_maximum_output_length": 32 * 2**20,
    "jbig2_maximum_output_length": 32 * 2**20,
    "stream_decoding_work_maximum_length": 64 * 2**20,
    "jbig2dec_binary": None,  # never run an external decoder on an upload
}


def check_pdf(data: bytes, declared_name: str, *, limits: PdfLimits = PdfLimits()) -> SyllabusText:
    """The text of ``data`` if it is a plain PDF (module docstring: what is refused, in
    which order). ``declared_name`` is only recorded as the source; the client's MIME
    type is not an input. CPU-bound: call it through ``asyncio.to_thread``. Raises a
    :class:`~keel.roadmaps.syllabus.errors.SyllabusError` and nothing else."""
    if len(data) > limits.max_bytes:
        raise SyllabusTooLarge(f"The PDF is larger than {limits.max_bytes} bytes")
    try:
        _check_format(data)
        _refuse_active(name.decode() for name in _RAW_NAMES.in_file(data))
        with pypdf.apply_configuration(**_PYPDF_LIMITS):
            return _read(data, _display_name(declared_name), limits)
    except SyllabusError:
        raise
    except pdf_names.TooComplex as exc:
        raise PdfUnreadable("The PDF is too complex to check") from exc
    except Exception as exc:  # pypdf on hostile bytes can raise almost anything
        raise PdfUnreadable("The PDF could not be read") from exc


def _check_format(data: bytes) -> None:
    """Refuse ``data`` unless it is a PDF by its magic and nothing else besides (steps 2 and
    3 of the module docstring)."""
    at = data.find(PDF_MAGIC, 0, MAGIC_WINDOW + len(PDF_MAGIC))
    if at < 0:
        raise NotAPdf(f"The file is not a PDF: no %PDF- header in its first {MAGIC_WINDOW} bytes")
    if data[:at].strip(_WHITESPACE):
        raise PdfPolyglot(
            "The file starts as another format before its PDF header", reason="prefix"
        )
    end = data.rfind(EOF_MARKER)
    if end < 0:
        raise PdfUnreadable("The PDF is truncated: it has no %%EOF marker")
    if data[end + len(EOF_MARKER) :].strip(_WHITESPACE):
        raise PdfPolyglot("The file has data after the end of the PDF", reason="trailing data")
    if zipfile.is_zipfile(io.BytesIO(data)):
        raise PdfPolyglot("The file is also a ZIP archive", reason="zip")


def _read(data: bytes, source: str, limits: PdfLimits) -> SyllabusText:
    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise PdfEncrypted("The PDF is encrypted; upload a copy without a password")
    _refuse_active(_graph_names(reader, data, limits.max_objects))
    page_count = len(reader.pages)
    if page_count > limits.max_pages:
        raise PdfTooManyPages(f"The PDF has {page_count} pages; at most {limits.max_pages}")
    if page_count == 0:
        raise PdfUnreadable("The PDF has no pages")
    parts: list[str] = []
    size = 0
    for page in reader.pages:
        text = page.extract_text() or ""
        parts.append(text)
        size += len(text)
        if size > 2 * limits.max_chars:  # enough to fill the cap once tidied
            break
    text, truncated = tidy_text("\n".join(parts), max_chars=limits.max_chars)
    if not text:
        raise SyllabusEmpty("The PDF has no text to read (is it a scan?)")
    truncated = truncated or len(parts) < page_count
    return SyllabusText(text, source, "pdf", truncated=truncated, pages=page_count)


def _refuse_active(names: Iterable[str]) -> None:
    found = sorted(set(names))
    if "/Encrypt" in found:
        raise PdfEncrypted("The PDF is encrypted; upload a copy without a password")
    if found:
        raise PdfActiveContent(
            f"The PDF contains active content ({', '.join(found)}); "
            "export or print it to a plain PDF and upload that",
            reason=", ".join(found),
        )


# --- the objects --------------------------------------------------------------------------------

_OBJECT_HEADER = re.compile(
    rb"(?<![0-9])[0-9]{1,10}[\x00\t\n\x0c\r ]++[0-9]{1,5}[\x00\t\n\x0c\r ]++obj"
)
_NODES_PER_OBJECT = 50  # on average; a budget for the walk as a whole


def _graph_names(reader: pypdf.PdfReader, data: bytes, max_objects: int) -> Iterator[str]:
    """Active names (and an acting ``/OpenAction``) in every object of the file."""
    nodes = [max_objects * _NODES_PER_OBJECT]
    for count, root in enumerate(_every_object(reader, data)):
        if count > max_objects:
            raise PdfUnreadable(f"The PDF has more than {max_objects} objects to check")
        yield from _walk(root, nodes)


def _every_object(reader: pypdf.PdfReader, data: bytes) -> Iterator[PdfObject]:
    yield reader.trailer
    listed: set[int] = set()
    for generation, entries in reader.xref.items():
        for number, offset in entries.items():
            listed.add(offset)
            obj = reader.get_object(IndirectObject(number, generation, reader))
            if obj is not None:
                yield obj
    for number in reader.xref_objStm:
        obj = reader.get_object(IndirectObject(number, 0, reader))
        if obj is not None:
            yield obj
    # Objects no table lists: a repairing reader would still find them.
    stream = io.BytesIO(data)
    for header in _OBJECT_HEADER.finditer(data):
        if header.start() in listed:
            continue
        stream.seek(header.start())
        try:
            reader.read_object_header(stream)
            obj = read_object(stream, reader)
        except Exception:  # noqa: S112 - "1 0 obj" inside binary data is not an object
            continue
        yield obj


def _walk(root: PdfObject, nodes: list[int]) -> Iterator[str]:
    stack: list[Any] = [root]
    while stack:
        nodes[0] -= 1
        if nodes[0] < 0:
            raise PdfUnreadable("The PDF is too complex to check")
        node = stack.pop()
        if isinstance(node, IndirectObject):
            continue  # every object is walked from the tables or the raw scan
        if isinstance(node, NameObject):
            if node in ACTIVE_NAMES:
                yield str(node)
        elif isinstance(node, DictionaryObject):
            for key, value in dict.items(node):
                if key in ACTIVE_NAMES:
                    yield str(key)
                if key == "/OpenAction" and not _opens_a_page(value):
                    yield "/OpenAction"
                stack.append(value)
            if isinstance(node, StreamObject) and node.get("/Type") == "/ObjStm":
                # Its objects, decompressed: the raw scan cannot see inside a stream.
                yield from (name.decode() for name in _RAW_NAMES.in_syntax(node.get_data()))
        elif isinstance(node, ArrayObject):
            stack.extend(node)


def _opens_a_page(action: PdfObject) -> bool:
    """Whether an ``/OpenAction`` only shows a page: an explicit destination, or a ``/GoTo``
    action (anything chained after it in ``/Next`` is walked like everything else)."""
    target = action.get_object()
    if isinstance(target, ArrayObject):
        return True
    return isinstance(target, DictionaryObject) and target.get("/S") == "/GoTo"


_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def _display_name(declared: str) -> str:
    """The uploaded file's name as a label: last path part, no control characters."""
    name = declared.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE_IN_NAME.sub("", name)[:255] or "upload.pdf"
