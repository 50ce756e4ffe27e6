"""Render CPU per discharge summary: the fixed font subset beside how fonts were handled before.

Run by hand: ``python -m bench.bench_render [--encounters 60] [--seed 3] [--rounds 3]``. Nothing is
asserted; the machine is shared and noisy, so each variant reports its best round. All variants
draw the same sample documents with the same layout code; they differ in how fonts are handled:

* ``stock``: fpdf2 as documented: ``add_font`` of the complete DejaVu Sans (regular and bold) in
  every document, fpdf2 subsets both on ``output``, every line through ``FPDF.cell``.
* ``presubset``: the previous renderer: DejaVu Sans pre-subset once per process and cloned into
  each document, but still subset and serialised again by fpdf2 for every document, every line
  through ``FPDF.cell``.
* ``fixed``: ``Renderer.create()`` as shipped: the fixed subset serialised once per process
  (archive/render/program.py), lines in the fixed face written directly.

Font bytes are the stored (compressed) FontFile2, ToUnicode and CIDToGIDMap streams per document.
Target (render is the pipeline's bottleneck): <= 45 ms CPU per document, ~80 ms for all stages.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path
from unittest import mock

from fpdf import FPDF
from pyhanko.pdf_utils.reader import PdfFileReader

from archive.render import (
    PT,
    REPERTOIRE,
    FixedProgram,
    FontFiles,
    FontSet,
    Renderer,
    RenderSettings,
    SummaryPdf,
)
from archive.render.fonts import _face, _read_font
from archive.sources import EncounterBundle, Window, collect
from bench.common import peak_rss_mib, table
from infra.sample.generator import write_sample_export

DAY = date(2026, 11, 22)
CREATED = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


class _CellPdf(SummaryPdf):
    """The layout drawing every line with ``FPDF.cell`` and measuring character by character."""

    def put(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        bold: bool = False,
        w: float = 0,
        align: str = "L",
    ) -> None:
        self._put_cell(x, y, text, size, bold, w, align)

    def measure(self, text: str, size: float, bold: bool = False) -> float:
        return self._measure_mixed(text, bold) * size / 1000 * PT


class _BaselineFonts(FontSet):
    """Faces built the old way; ``fixed`` only answers SummaryPdf's constructor (unused here)."""

    def __init__(self, *, presubset: bool, shipped: FontSet) -> None:
        settings = RenderSettings()
        self._files = FontFiles(settings.font_regular, settings.font_bold)
        raw = {p: _read_font(p) for p in (settings.font_regular, settings.font_bold)}
        if presubset:
            faces = [_face("dejavu", self._files, raw, REPERTOIRE)]
            faces.append(_face("dejavufull", self._files, raw, None))
        else:
            faces = [_face("dejavu", self._files, raw, None)]
        super().__init__(faces, shipped.fingerprint)
        self._stock = not presubset
        self._shipped = shipped

    def fixed(self, bold: bool) -> tuple[str, FixedProgram]:
        return self._shipped.fixed(bold)

    def install(self, pdf: FPDF, fontkey: str) -> None:
        if not self._stock or fontkey in pdf.fonts:
            super().install(pdf, fontkey)
            return
        bold = fontkey.endswith("B")
        path = self._files.bold if bold and self._files.bold else self._files.regular
        pdf.add_font(fontkey.removesuffix("B"), "B" if bold else "", str(path))  # parses 750 kB


@dataclass
class Result:
    name: str
    create_s: float
    cpu_ms: float
    pages: float
    kib: float
    font_kib: float


def run(
    name: str,
    make: type[SummaryPdf],
    renderer: Renderer,
    bundles: list[EncounterBundle],
    rounds: int,
    create_s: float,
) -> Result:
    with _layout(make):
        docs = [renderer.render(b.bundle, b.canonical, created_at=CREATED) for b in bundles[:2]]
        best = float("inf")
        for _ in range(rounds):
            start = time.process_time()
            docs = [renderer.render(b.bundle, b.canonical, created_at=CREATED) for b in bundles]
            best = min(best, time.process_time() - start)
    n = len(docs)
    return Result(
        name=name,
        create_s=create_s,
        cpu_ms=best * 1000 / n,
        pages=sum(d.pages for d in docs) / n,
        kib=sum(len(d.pdf) for d in docs) / n / 1024,
        font_kib=sum(_font_bytes(d.pdf) for d in docs) / n / 1024,
    )


@contextmanager
def _layout(make: type[SummaryPdf]) -> Iterator[None]:
    with mock.patch("archive.render.renderer.SummaryPdf", make):
        yield


def _font_bytes(pdf: bytes) -> int:
    reader = PdfFileReader(BytesIO(pdf))
    total, seen = 0, set()
    for kid in reader.root["/Pages"]["/Kids"]:
        for ref in kid.get_object()["/Resources"].raw_get("/Font").get_object().values():
            if ref.idnum in seen:
                continue
            seen.add(ref.idnum)
            font = ref.get_object()
            cid = font["/DescendantFonts"][0]
            streams = (
                cid["/FontDescriptor"]["/FontFile2"],
                font["/ToUnicode"],
                cid["/CIDToGIDMap"],
            )
            total += sum(len(s.encoded_data) for s in streams)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encounters", type=int, default=60, help="sample encounters to export")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emr-bench-render-") as tmp:
        write_sample_export(Path(tmp), encounters=args.encounters, seed=args.seed, day=DAY)
        found = collect(Path(tmp), window=Window.for_day(DAY))
        bundles = [b for b in found if isinstance(b, EncounterBundle)]
    settings = RenderSettings()
    start = time.process_time()
    fonts = FontSet.load(FontFiles(settings.font_regular, settings.font_bold))  # = Renderer.create
    shipped, create_fixed = Renderer(settings=settings, fonts=fonts), time.process_time() - start
    start = time.process_time()
    stock = Renderer(settings=settings, fonts=_BaselineFonts(presubset=False, shipped=fonts))
    create_stock = time.process_time() - start
    start = time.process_time()
    presub = Renderer(settings=settings, fonts=_BaselineFonts(presubset=True, shipped=fonts))
    create_presub = time.process_time() - start
    results = [
        run("stock", _CellPdf, stock, bundles, args.rounds, create_stock),
        run("presubset", _CellPdf, presub, bundles, args.rounds, create_presub),
        run("fixed", SummaryPdf, shipped, bundles, args.rounds, create_fixed),
    ]
    base = results[0]
    print(
        f"{len(bundles)} sample documents (seed {args.seed}), best of {args.rounds} rounds, "
        "CPU time of Renderer.render in one process\n"
    )
    print(
        table(
            [
                (
                    "variant",
                    "create s",
                    "CPU ms/doc",
                    "docs/s/core",
                    "vs stock",
                    "pages/doc",
                    "KiB/doc",
                    "font KiB/doc",
                ),
                *[
                    (
                        r.name,
                        f"{r.create_s:.2f}",
                        f"{r.cpu_ms:.1f}",
                        f"{1000 / r.cpu_ms:.0f}",
                        f"{r.cpu_ms / base.cpu_ms:.0%}",
                        f"{r.pages:.2f}",
                        f"{r.kib:.1f}",
                        f"{r.font_kib:.1f}",
                    )
                    for r in results
                ],
            ]
        )
    )
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
