"""Incremental updates appended to a signed record, for comparing incremental-update analyses.

Each builder takes signed PDF bytes and returns them with one more revision (or two), written
with pyHanko's IncrementalPdfFileWriter (or, where a writer cannot express the change, as raw
bytes): an annotation, a form field filled and then changed, a drawing over the page (shadow
overlay), an object redefined, objects moved into an object stream behind an xref stream, an
object freed, an orphan object, the DSS's certificates replaced by something else. Attack
classes after pdf-insecurity.org and pyHanko's own diff-analysis cases; the signed record itself
comes from the real signer. ``tests/support/attacks.py`` has the page and page-tree changes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

__all__ = [
    "add_annotation",
    "add_orphan",
    "also_reference_the_form",
    "change_field_value",
    "fill_new_field",
    "free_object",
    "overlay_drawing",
    "redefine_font_widths",
    "redefine_identically",
    "replace_dss_certs",
    "retitle_signature_field",
    "update_in_object_stream",
]

N = generic.NameObject


def _revise(pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    assert out.getvalue().startswith(pdf)
    return out.getvalue()


def _rect(*values: int) -> Any:
    return generic.ArrayObject([generic.NumberObject(v) for v in values])  # type: ignore[no-untyped-call]


def _page(writer: IncrementalPdfFileWriter) -> Any:
    return writer.root["/Pages"]["/Kids"][0].get_object()


def add_annotation(pdf: bytes) -> bytes:
    """A visible note on the page: a comment added after signing."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page = _page(writer)
        note = generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {
                N("/Type"): N("/Annot"),
                N("/Subtype"): N("/FreeText"),
                N("/Rect"): _rect(50, 50, 300, 90),
                N("/Contents"): generic.TextStringObject("diagnosis withdrawn"),
                N("/DA"): generic.TextStringObject("/Helv 12 Tf 0 g"),
            }
        )
        annots = page["/Annots"]
        annots.append(writer.add_object(note))
        writer.update_container(page)

    return _revise(pdf, change)


def _text_field(writer: IncrementalPdfFileWriter, value: str) -> Any:
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    field = generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {
            N("/FT"): N("/Tx"),
            N("/T"): generic.TextStringObject("Remark"),
            N("/V"): generic.TextStringObject(value),
            N("/Type"): N("/Annot"),
            N("/Subtype"): N("/Widget"),
            N("/Rect"): _rect(0, 0, 0, 0),
            N("/P"): page_ref,
        }
    )
    ref = writer.add_object(field)
    form = writer.root["/AcroForm"]
    form["/Fields"].append(ref)
    writer.update_container(form)
    page = page_ref.get_object()
    page["/Annots"].append(ref)
    writer.update_container(page)
    return ref


def also_reference_the_form(pdf: bytes) -> bytes:
    """Before signing: an (empty) interactive form that the catalog names twice, as /AcroForm
    and under a key of its own, so the signed revision reaches the form by two paths; pyHanko
    accepts a later change to the form only as justified on every path it has."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        form = writer.add_object(
            generic.DictionaryObject({N("/Fields"): generic.ArrayObject()})  # type: ignore[no-untyped-call]
        )
        writer.root[N("/AcroForm")] = form
        writer.root[N("/ExtraForm")] = form
        writer.update_root()  # type: ignore[no-untyped-call]

    return _revise(pdf, change)


def fill_new_field(pdf: bytes) -> bytes:
    """A text field added after signing, with a value (form filling)."""
    return _revise(pdf, lambda writer: _text_field(writer, "first"))


def change_field_value(pdf: bytes) -> bytes:
    """The field of :func:`fill_new_field`, its value changed in a further revision."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        for ref in writer.root["/AcroForm"]["/Fields"]:
            field = ref.get_object()
            if field.get("/T") == "Remark":
                field["/V"] = generic.TextStringObject("second")
                writer.update_container(field)

    return _revise(fill_new_field(pdf), change)


def retitle_signature_field(pdf: bytes) -> bytes:
    """The signed signature field's own dictionary edited (a tooltip added)."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        field = writer.root["/AcroForm"]["/Fields"][0].get_object()
        field["/TU"] = generic.TextStringObject("approved by someone else")
        writer.update_container(field)

    return _revise(pdf, change)


def overlay_drawing(pdf: bytes) -> bytes:
    """Shadow-attack style overlay: a form XObject that paints over the page, added to the
    page's resources and drawn by a content stream appended to it."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page = _page(writer)
        cover = generic.StreamObject(
            {
                N("/Type"): N("/XObject"),
                N("/Subtype"): N("/Form"),
                N("/BBox"): _rect(0, 0, 600, 800),
            },
            stream_data=b"1 g 0 0 600 800 re f",
        )
        resources = page["/Resources"]
        xobjects = resources.setdefault(N("/XObject"), generic.DictionaryObject())  # type: ignore[no-untyped-call]
        xobjects[N("/Cover")] = writer.add_object(cover)
        writer.update_container(resources)
        draw = generic.StreamObject(stream_data=b"q /Cover Do Q")
        writer.add_stream_to_page(0, writer.add_object(draw))  # type: ignore[no-untyped-call]

    return _revise(pdf, change)


def _font_ref(writer: IncrementalPdfFileWriter) -> Any:
    fonts = _page(writer)["/Resources"]["/Font"]
    first = fonts[next(iter(fonts))]
    return first["/DescendantFonts"].raw_get(0)


def redefine_font_widths(pdf: bytes) -> bytes:
    """An object of the signed revision redefined later: a font's glyph widths changed."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        ref = _font_ref(writer)
        font = ref.get_object()
        font["/DW"] = generic.NumberObject(1000)  # type: ignore[no-untyped-call]
        writer.update_container(font)

    return _revise(pdf, change)


def redefine_identically(pdf: bytes) -> bytes:
    """The same font object written again unchanged (harmless, pyHanko ignores it)."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.mark_update(_font_ref(writer))

    return _revise(pdf, change)


def update_in_object_stream(pdf: bytes) -> bytes:
    """An update written behind an xref stream (the signed file has xref tables): the page
    rotated, and a new annotation on it kept in an object stream."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.stream_xrefs = True
        stream = writer.prepare_object_stream()  # type: ignore[no-untyped-call]
        page = _page(writer)
        page["/Rotate"] = generic.NumberObject(90)  # type: ignore[no-untyped-call]
        note = generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {N("/Type"): N("/Annot"), N("/Subtype"): N("/Text"), N("/Rect"): _rect(0, 0, 9, 9)}
        )
        page["/Annots"].append(writer.add_object(note, obj_stream=stream))
        writer.update_container(page)

    return _revise(pdf, change)


def add_orphan(pdf: bytes) -> bytes:
    """A new object nothing refers to (tolerated by pyHanko at the LTA level)."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        writer.add_object(generic.TextStringObject("unused"))
        writer.update_root()  # type: ignore[no-untyped-call]

    return _revise(pdf, change)


def replace_dss_certs(pdf: bytes, *, with_stream: bool) -> bytes:
    """The DSS's certificate list pointed at the page's content stream, or at the page."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        dss = writer.root["/DSS"]
        page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
        target = _page(writer).raw_get("/Contents") if with_stream else page_ref
        dss["/Certs"] = generic.ArrayObject([target])
        writer.update_container(dss)

    return _revise(pdf, change)


def free_object(pdf: bytes) -> bytes:
    """A raw update whose xref table frees the document information dictionary's object."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    info = reader.trailer.raw_get("/Info")
    size = int(reader.trailer["/Size"])
    root = reader.trailer.raw_get("/Root")
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    start = len(pdf)
    section = (
        b"xref\n0 1\n0000000000 65535 f \n%d 1\n0000000000 00001 f \n" % info.idnum
        + b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\n" % (size, root.idnum, prev)
        + b"startxref\n%d\n%%%%EOF\n" % start
    )
    return pdf + section
