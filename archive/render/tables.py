"""Tables of the discharge summary: wrapped cells, a header row repeated on every page the table
continues on, and rows taller than a page split between pages instead of being cut."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from archive.core.errors import RenderError
from archive.render.model import DASH, Table
from archive.render.style import (
    BODY,
    BOTTOM,
    FILL,
    LABEL,
    MARGIN,
    PAD,
    RULE,
    SMALL,
    TOP,
    WIDTH,
    line_height,
)

if TYPE_CHECKING:
    from archive.render.layout import SummaryPdf


def draw_table(pdf: SummaryPdf, table: Table) -> None:
    if len(table.widths) != len(table.headers):
        raise RenderError("internal error: a table's widths do not match its columns")
    widths = [WIDTH * f for f in table.widths]
    header = [
        pdf.wrap(h, w - 2 * PAD, LABEL, bold=True)
        for h, w in zip(table.headers, widths, strict=True)
    ]
    header_h = max(map(len, header)) * line_height(LABEL) + 2 * PAD
    first_row = _wrap_row(pdf, table.rows[0], widths) if table.rows else []
    caption_h = line_height(SMALL) + 0.8 if table.caption else 0
    if not pdf.room(caption_h + header_h + _row_height(first_row[:2], BODY)):
        pdf.new_page()
    if table.caption:
        pdf.put(MARGIN, pdf.y, table.caption, SMALL, bold=True)
        pdf.y += caption_h
    _header_row(pdf, header, widths)
    for row in table.rows:
        _row(pdf, _wrap_row(pdf, row, widths), widths, lambda: _header_row(pdf, header, widths))
    pdf.y += 1.5


def _wrap_row(pdf: SummaryPdf, row: Sequence[str], widths: Sequence[float]) -> list[list[str]]:
    cells = list(row) + [DASH] * (len(widths) - len(row))
    return [pdf.wrap(c or DASH, w - 2 * PAD, BODY) for c, w in zip(cells, widths, strict=False)]


def _header_row(pdf: SummaryPdf, header: list[list[str]], widths: Sequence[float]) -> None:
    _cells(pdf, header, widths, LABEL, bold=True, fill=True)


def _row(
    pdf: SummaryPdf,
    cells: list[list[str]],
    widths: Sequence[float],
    repeat_header: Callable[[], None],
) -> None:
    lh = line_height(BODY)
    capacity = int((BOTTOM - TOP - 12 - 2 * PAD) / lh)  # lines a fresh page holds
    if not pdf.room(_row_height(cells, BODY)) and max(map(len, cells)) <= capacity:
        _break_table(pdf, repeat_header)
    while True:
        fit = int((BOTTOM - pdf.y - 2 * PAD) / lh)
        if fit < 1:
            _break_table(pdf, repeat_header)
            continue
        _cells(pdf, [c[:fit] for c in cells], widths, BODY)
        cells = [c[fit:] for c in cells]
        if not any(cells):
            return
        _break_table(pdf, repeat_header)  # a row taller than a page continues overleaf


def _break_table(pdf: SummaryPdf, repeat_header: Callable[[], None]) -> None:
    pdf.new_page()
    repeat_header()


def _cells(
    pdf: SummaryPdf,
    cells: list[list[str]],
    widths: Sequence[float],
    size: float,
    bold: bool = False,
    fill: bool = False,
) -> None:
    height = _row_height(cells, size)
    x, top = MARGIN, pdf.y
    pdf.set_draw_color(*RULE)
    pdf.set_fill_color(*FILL)
    for lines, width in zip(cells, widths, strict=True):
        pdf.rect(x, top, width, height, style="DF" if fill else "D")
        for n, line in enumerate(lines):
            pdf.put(x + PAD, top + PAD + n * line_height(size), line, size, bold=bold)
        x += width
    pdf.set_draw_color(0, 0, 0)
    pdf.y = top + height


def _row_height(cells: Sequence[Sequence[str]], size: float) -> float:
    return max((len(c) for c in cells), default=1) * line_height(size) + 2 * PAD
