"""The copy into a revision's view the incremental-update analysis installs
(archive.sign.diff_policy) gives exactly pyHanko's copy: the same objects, container references
and views, the same errors, for every kind of value and every object of a document with an
incremental update."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter

from archive.sign import diff_policy

g: Any = generic
new_writer: Any = PdfFileWriter


def _document() -> bytes:
    writer = new_writer()
    inner = writer.add_object(g.DictionaryObject({"/N": g.NumberObject(1)}))
    values = {
        "/Name": g.NameObject("/X"),
        "/Int": g.NumberObject(7),
        "/Real": g.FloatObject("1.5"),
        "/Bool": g.BooleanObject(True),
        "/Null": g.NullObject(),
        "/Text": g.TextStringObject("text"),
        "/Bytes": g.ByteStringObject(b"\xff\x00"),
        "/Array": g.ArrayObject([g.NumberObject(1), inner, g.ArrayObject([g.NameObject("/Y")])]),
        "/Dict": g.DictionaryObject({"/Ref": inner, "/Z": g.NumberObject(3)}),
        "/Stream": writer.add_object(g.StreamObject({"/K": g.NameObject("/V")}, b"data")),
    }
    writer.root["/Test"] = writer.add_object(g.DictionaryObject(values))
    out = io.BytesIO()
    writer.write(out)
    update: Any = IncrementalPdfFileWriter(out)
    update.update_container(update.root)
    update.root["/Later"] = g.NumberObject(2)
    update.update_root()
    update.write_in_place()
    return out.getvalue()


def _describe(value: Any, view: object) -> object:
    """Type, value, container reference and whether references resolve in the view, all the
    way down; a plain value must be the very object read (pyHanko does not copy those)."""
    if isinstance(value, dict):
        inner: object = [(k, _describe(v, view)) for k, v in value.items()]
        if isinstance(value, generic.StreamObject):
            inner = (inner, value.encoded_data)
    elif isinstance(value, list):
        inner = [_describe(v, view) for v in value]
    elif isinstance(value, generic.IndirectObject):
        inner = (value.reference, value.reference.pdf is view)
    else:
        inner = (value, id(value))
    ref = getattr(value, "container_ref", None)
    return (type(value), inner, ref, getattr(ref, "pdf", None) is view)


def _copies(pdf: bytes) -> list[tuple[int, generic.Reference, bool, object]]:
    """Every object of every revision, as the revision's view copies it, for both copiers."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    found: list[tuple[int, generic.Reference, bool, object]] = []
    for revision in range(reader.xrefs.total_revisions):
        view = HistoricalResolver(reader, revision)
        for ref in reader.xrefs.explicit_refs_in_revision(revision):
            raw = reader.get_object(ref, revision=revision)  # type: ignore[no-untyped-call]
            ours = _describe(diff_policy._subsume(view, raw), view)
            diff_policy.uninstall()  # pyHanko's copy recurses through the installed one
            try:
                theirs = _describe(diff_policy._ORIGINAL_SUBSUME(view, raw), view)
            finally:
                diff_policy.install()
            found.append((revision, ref, ours == theirs, ours))
    return found


def test_every_object_of_an_updated_document_is_copied_as_pyhanko_copies_it() -> None:
    found = _copies(_document())
    assert [f for f in found if not f[2]] == []
    assert len({f[0] for f in found}) == 2
    assert len(found) > 6


@pytest.mark.parametrize(
    "value",
    [
        g.NumberObject(1),
        g.NameObject("/A"),
        g.TextStringObject("x"),
        g.BooleanObject(False),
        g.NullObject(),
    ],
)
@pytest.mark.parametrize("container", ["none", "trailer", "reference"])
def test_a_plain_value_is_handed_back_or_refused_as_pyhanko_does(
    value: Any, container: str
) -> None:
    reader = PdfFileReader(io.BytesIO(_document()), strict=True)
    view = HistoricalResolver(reader, 0)
    value.container_ref = {
        "none": None,
        "trailer": g.TrailerReference(reader),
        "reference": g.Reference(3, 0, reader),
    }[container]

    def copy(subsume: Any) -> object:
        try:
            return ("copied", id(subsume(view, value)))
        except Exception as e:  # noqa: BLE001 - the error is what is compared
            return (type(e), str(e))

    assert copy(diff_policy._subsume) == copy(diff_policy._ORIGINAL_SUBSUME)


def test_the_copy_is_installed_and_can_be_taken_back() -> None:
    assert HistoricalResolver._subsume_object is diff_policy._subsume
    diff_policy.uninstall()
    try:
        assert HistoricalResolver._subsume_object is diff_policy._ORIGINAL_SUBSUME
    finally:
        diff_policy.install()
