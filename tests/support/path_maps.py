"""Compare the map of the paths to each object of every revision (archive.sign.ref_paths)
with pyHanko's own: shared by the unit tests (odd structures) and the integration tests (signed
records and attack documents)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader

from archive.sign import ref_paths


def maps(pdf: bytes, load: Callable[[Any], None], *, strict: bool = True) -> list[object]:
    """Per revision: each reference with its view, its paths in iteration order, the objects
    the walk read into the view; or the error."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=strict)
    found: list[object] = []
    for revision in range(reader.xrefs.total_revisions):
        view = HistoricalResolver(reader, revision)
        try:
            load(view)
        except Exception as e:  # noqa: BLE001 - the error is what is compared
            found.append(("raised", type(e), str(e)))
            continue
        cache = view._indirect_object_access_cache or {}
        found.append(
            [(ref, ref.pdf is view, [p.path for p in paths]) for ref, paths in cache.items()]
        )
        found.append(sorted((r.idnum, r.generation) for r in view.cache))
    return found


def same_as_pyhanko(pdf: bytes, *, strict: bool = True) -> list[object]:
    theirs = maps(pdf, ref_paths._ORIGINAL, strict=strict)
    assert maps(pdf, ref_paths.load_reverse_xref_cache, strict=strict) == theirs
    return theirs


def last_changes(pdf: bytes, find: Callable[[Any, Any], int]) -> list[object]:
    """The newest revision of every object number in use and past it, generations 0, 1 and
    5, asked twice (the second answer may come from a memo); or the error."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    xrefs = reader.xrefs
    revisions = range(xrefs.total_revisions)
    top = max(r.idnum for n in revisions for r in xrefs.explicit_refs_in_revision(n)) + 3
    found: list[object] = []
    for _ in range(2):
        for idnum in range(top):
            for generation in (0, 1, 5):
                ref = generic.Reference(idnum, generation, reader)
                try:
                    found.append(find(xrefs, ref))
                except KeyError as e:
                    found.append(("KeyError", e.args[0] is ref))
    return found


def same_history_as_pyhanko(pdf: bytes) -> list[object]:
    theirs = last_changes(pdf, ref_paths._ORIGINAL_LAST_CHANGE)
    assert last_changes(pdf, ref_paths.last_change) == theirs
    return theirs
