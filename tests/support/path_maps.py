"""Compare the map of the paths to each object of every revision (archive.sign.ref_paths)
with pyHanko's own: shared by the unit tests (odd structures) and the integration tests (signed
records and attack documents)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

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
