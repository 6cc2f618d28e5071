"""PDFs built in the test run (no binary fixtures): plain text documents, and the hostile
shapes a syllabus upload must refuse."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    TextStringObject,
)

Tweak = Callable[[PdfWriter], None]


def _name(value: str) -> NameObject:
    return NameObject(value)


def text_pdf(*pages: str, tweak: Tweak | None = None) -> bytes:
    """A PDF with one page per string, each showing it in Helvetica; ``tweak`` edits the
    document before it is written."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                _name("/Type"): _name("/Font"),
                _name("/Subtype"): _name("/Type1"),
                _name("/BaseFont"): _name("/Helvetica"),
            }
        )
    )
    for text in pages or ("",):
        page = writer.add_blank_page(612, 792)
        page[_name("/Resources")] = DictionaryObject(
            {_name("/Font"): DictionaryObject({_name("/F1"): font})}
        )
        content = DecodedStreamObject()
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        content.set_data(f"BT /F1 18 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1"))
        page[_name("/Contents")] = writer._add_object(content)
    if tweak is not None:
        tweak(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def open_action(action: DictionaryObject | ArrayObject) -> Tweak:
    def tweak(writer: PdfWriter) -> None:
        writer._root_object[_name("/OpenAction")] = action

    return tweak


def uri_action(uri: str) -> DictionaryObject:
    return DictionaryObject({_name("/S"): _name("/URI"), _name("/URI"): TextStringObject(uri)})


def launch_action(program: str) -> DictionaryObject:
    return DictionaryObject({_name("/S"): _name("/Launch"), _name("/F"): TextStringObject(program)})


def attach(name: str, data: bytes) -> Tweak:
    def tweak(writer: PdfWriter) -> None:
        writer.add_attachment(name, data)

    return tweak


def fit_first_page(writer: PdfWriter) -> None:
    """What LaTeX's hyperref writes into most PDFs: open at page 1, fitted."""
    destination = ArrayObject([writer.pages[0].indirect_reference, _name("/Fit")])
    writer._root_object[_name("/OpenAction")] = destination


def with_unlisted_object(pdf: bytes, obj: bytes) -> bytes:
    """``pdf`` (a classic cross-reference table) with ``obj`` inserted before its table:
    present in the file, listed nowhere, reachable from nothing."""
    at = pdf.rindex(b"\nxref\n") + 1
    inserted = b"99 0 obj\n" + obj + b"\nendobj\n"
    startxref = pdf.rindex(b"startxref\n")
    old_offset = int(pdf[startxref + 10 :].split(b"\n", 1)[0])
    head = pdf[:at] + inserted + pdf[at:startxref]
    return head + b"startxref\n" + str(old_offset + len(inserted)).encode() + b"\n%%EOF\n"


def object_stream(*members: bytes, first_number: int) -> tuple[bytes, bytes]:
    """An object stream holding ``members`` as objects ``first_number``...: its dictionary
    entries and its (compressed) data."""
    offsets, body = [], b""
    for index, member in enumerate(members):
        offsets.append(f"{first_number + index} {len(body)}")
        body += member + b"\n"
    header = " ".join(offsets).encode() + b"\n"
    data = zlib.compress(header + body)
    entries = (
        f"/Type /ObjStm /N {len(members)} /First {len(header)} "
        f"/Filter /FlateDecode /Length {len(data)}"
    ).encode()
    return entries, data


def compressed_pdf(text: str, *members: bytes) -> bytes:
    """A PDF 1.5 whose font and ``members`` are compressed in an object stream listed by a
    cross-reference stream (how modern writers save space): readers see them, a scan of
    the raw bytes does not."""
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}

    def add(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")

    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    add(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    add(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    add(
        3,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 6 0 R >> >> /Contents 4 0 R >>",
    )
    add(4, f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    entries, data = object_stream(font, *members, first_number=6)
    add(5, b"<< " + entries + b" >>\nstream\n" + data + b"\nendstream")
    xref_number = 6 + 1 + len(members)
    rows = [bytes([0]) + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big")]
    rows += [bytes([1]) + offsets[n].to_bytes(4, "big") + bytes(2) for n in range(1, 6)]
    rows += [
        bytes([2]) + (5).to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(1 + len(members))
    ]
    offsets[xref_number] = len(out)
    rows.append(bytes([1]) + offsets[xref_number].to_bytes(4, "big") + bytes(2))
    table = b"".join(rows)
    add(
        xref_number,
        (
            f"<< /Type /XRef /Size {xref_number + 1} /W [1 4 2] /Root 1 0 R "
            f"/Length {len(table)} >>\nstream\n"
        ).encode()
        + table
        + b"\nendstream",
    )
    out.extend(f"startxref\n{offsets[xref_number]}\n%%EOF\n".encode())
    return bytes(out)
