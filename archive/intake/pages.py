"""A record's scans as groups of at most N pages, and the converted groups joined again.

OCRmyPDF hands a whole document to Ghostscript for PDF/A, and img2pdf builds the whole wrapped
PDF in memory: both grew with the pages of a record (a thick record is hundreds of pages). So the
converter works on groups of ``[intake] pages_per_group`` pages, one OCRmyPDF call each, and joins
the groups' PDF/A outputs with pikepdf: memory is bounded by the group, not the record. A record
that fits in one group is converted whole, as before (its bytes do not change).

A page of a multi-page TIFF in a split group is copied to a single-page TIFF first, with its pixels,
resolution and orientation and a lossless codec (CCITT G4 for bilevel pages, which img2pdf embeds
as is; Deflate otherwise, which is what img2pdf re-encodes any non-JPEG TIFF to anyway).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import img2pdf
import pikepdf
from PIL import Image

from archive.core.errors import RenderError

_ORIENTATION: Final = 274  # the TIFF tag img2pdf's Rotation.ifvalid reads


def page_groups(paths: list[Path], work: Path, size: int) -> Iterator[Path]:
    """PDFs of at most ``size`` pages each, in page order (written in ``work``; a single PDF
    that fits is yielded as it is)."""
    if len(paths) == 1 and paths[0].suffix.lower() == ".pdf":
        yield from _pdf_groups(paths[0], work, size)
    else:
        yield from _image_groups(paths, work, size)


@contextlib.contextmanager
def joined(parts: list[Path]) -> Iterator[pikepdf.Pdf]:
    """The first part with every other part's pages appended (its catalog, output intent and
    metadata are the document's; the others' pages bring their own resources).

    Joined by qpdf's own page selection (``qpdf first.pdf --pages first.pdf ... --``, run in
    this process by :class:`pikepdf.Job`, stopped before it writes): it reads each page's
    image from its part's file only when the caller saves. ``Pdf.pages.extend`` copied every
    foreign image into memory on the spot, so the converting process grew by the record's
    size again on top of the output (~0.3 MB a page of a 200 dpi grey scan; measured with
    ``bench/bench_scans.py``)."""
    if len(parts) == 1:
        with pikepdf.open(parts[0]) as pdf:
            yield pdf
        return
    job = pikepdf.Job(
        {
            "inputFile": str(parts[0]),
            "outputFile": "-",  # required by the job's syntax; create_pdf writes nothing
            "pages": [{"file": str(part)} for part in parts],
        }
    )
    with job.create_pdf() as pdf:  # the parts stay open (qpdf's default) until it is closed
        yield pdf


def _pdf_groups(path: Path, work: Path, size: int) -> Iterator[Path]:
    try:
        source = pikepdf.open(path)
    except pikepdf.PdfError as e:
        raise RenderError(f"the scan PDF cannot be read ({type(e).__name__})") from e
    with source:
        count = len(source.pages)
        if count <= size:
            yield path
            return
        for number, start in enumerate(range(0, count, size)):
            target = work / f"group-{number:05d}.pdf"
            with pikepdf.new() as group:
                group.pages.extend(source.pages[start : start + size])
                group.save(target)
            yield target


def _image_groups(paths: list[Path], work: Path, size: int) -> Iterator[Path]:
    pages = [(path, frame) for path in paths for frame in range(_frames(path))]
    if len(pages) <= size:
        yield _wrap(paths, work / "images.pdf")
        return
    for number, start in enumerate(range(0, len(pages), size)):
        sources = [
            _single(path, frame, work / f"page-{start + i:06d}.tiff")
            for i, (path, frame) in enumerate(pages[start : start + size])
        ]
        target = _wrap(sources, work / f"group-{number:05d}.pdf")
        for source in sources:
            if source.parent == work:
                source.unlink()
        yield target


def _frames(path: Path) -> int:
    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, ValueError, SyntaxError) as e:
        raise RenderError(f"a scan image cannot be read ({type(e).__name__})") from e


def _single(path: Path, frame: int, target: Path) -> Path:
    """``path`` itself when it holds one page, else its page ``frame`` as a single-page TIFF."""
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) == 1:
                return path
            image.seek(frame)
            options: dict[str, object] = {
                "compression": "group4" if image.mode == "1" else "tiff_adobe_deflate"
            }
            if "dpi" in image.info:
                options["dpi"] = image.info["dpi"]
            if "icc_profile" in image.info:
                options["icc_profile"] = image.info["icc_profile"]
            orientation = getattr(image, "tag_v2", {}).get(_ORIENTATION)
            if orientation:
                options["tiffinfo"] = {_ORIENTATION: orientation}
            image.save(target, format="TIFF", **options)
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise RenderError(f"a scan page cannot be read ({type(e).__name__})") from e
    return target


def _wrap(paths: list[Path], target: Path) -> Path:
    try:
        target.write_bytes(
            img2pdf.convert([str(p) for p in paths], rotation=img2pdf.Rotation.ifvalid)
        )
    except (img2pdf.ImageOpenError, OSError, ValueError) as e:
        raise RenderError(f"the scan images cannot be wrapped as PDF ({type(e).__name__})") from e
    return target
