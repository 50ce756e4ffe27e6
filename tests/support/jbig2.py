"""Hand-built JBIG2 data (ITU-T T.88, as embedded in PDF: no file header) and scan PDFs drawing
one image, for the intake's inspection tests: sizes and counts as declared, coded pixels a few
bytes (inspection never decodes them)."""

from __future__ import annotations

import struct
from pathlib import Path

import pikepdf

A4 = (595, 842)


def segment(number: int, kind: int, data: bytes) -> bytes:
    """A JBIG2 segment (T.88 7.2): no referred-to segments, page 1, short page association."""
    return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data


def jbig2(
    page: tuple[int, int], region: tuple[int, int] | None = None, *, stripe_end: int | None = None
) -> bytes:
    """Page information (48), an immediate generic region (38) and the end of page (49): the
    sizes as declared, the coded pixels a few bytes (inspection never decodes them)."""
    w, h = page
    data = segment(0, 48, struct.pack(">IIIIBH", w, h, 0, 0, 0, 0x8000 if stripe_end else 0))
    rw, rh = region or page
    region_info = struct.pack(">IIIIB", rw, rh, 0, 0, 0)
    data += segment(1, 38, region_info + b"\x00" + bytes([3, 255, 253, 255, 2, 254, 254, 254]))
    if stripe_end is not None:
        data += segment(2, 50, struct.pack(">I", stripe_end))
    return data + segment(3, 49, b"")


def pdf_with_image(
    path: Path,
    *,
    width: int,
    height: int,
    filter_: str | list[str],
    data: bytes | None = None,
    params: dict[str, object] | None = None,
) -> Path:
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=A4)
        if data is None:
            data = jbig2((width, height)) if "JBIG2" in str(filter_) else b"\x00" * 64
        image = pikepdf.Stream(pdf, data)
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height, image.BitsPerComponent = width, height, 1
        image.ColorSpace = pikepdf.Name.DeviceGray
        filters = [filter_] if isinstance(filter_, str) else filter_
        image.Filter = pikepdf.Array([pikepdf.Name(f) for f in filters])
        if params is not None:
            image.DecodeParms = pikepdf.Dictionary(
                {
                    f"/{k}": pdf.make_stream(v) if isinstance(v, bytes) else v
                    for k, v in params.items()
                }
            )
        pdf.pages[0].Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        pdf.pages[0].Contents = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
        pdf.save(path)
    return path
