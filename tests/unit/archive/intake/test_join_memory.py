"""Joining a record's converted page groups must not hold its images in memory: they are read
from the groups' files as the joined document is saved. (``Pdf.pages.extend`` copied every
foreign image into memory at once: the converting process grew by the record's size, about
0.3 MB a page of a 200 dpi grey scan, on top of the output.)"""

from __future__ import annotations

import os
from pathlib import Path

import pikepdf

from archive.intake.pages import joined

PARTS, IMAGE_BYTES = 4, 6 * 1024 * 1024


def _part(path: Path, seed: int) -> Path:
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(595, 842))
        image = pikepdf.Stream(pdf, os.urandom(IMAGE_BYTES))  # incompressible, as a scan is
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height, image.BitsPerComponent = 2048, 3072, 8
        image.ColorSpace = pikepdf.Name.DeviceGray
        page = pdf.pages[0]
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.Contents = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
        pdf.docinfo["/Title"] = f"part {seed}"
        pdf.save(path)
    return path


def _anonymous_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_joining_groups_reads_their_images_from_disk_when_saved(tmp_path: Path) -> None:
    parts = [_part(tmp_path / f"part-{n}.pdf", n) for n in range(PARTS)]
    before = _anonymous_kib()
    with joined(parts) as pdf:
        grown = _anonymous_kib() - before
        assert len(pdf.pages) == PARTS
        pdf.save(tmp_path / "joined.pdf")
    # The three appended images are 18 MiB; a few MiB is the parts' objects and the allocator.
    assert grown < IMAGE_BYTES // 1024, f"joining held {grown} KiB"
    with pikepdf.open(tmp_path / "joined.pdf") as out:
        sizes = [len(p.Resources.XObject.Im0.read_bytes()) for p in out.pages]
        assert sizes == [IMAGE_BYTES] * PARTS
        assert str(out.docinfo.get("/Title")) == "part 0"  # the first part's document
