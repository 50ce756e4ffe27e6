"""Draws a :class:`~archive.render.model.Summary` on A4 pages with fpdf2.

Line breaking and page breaking are done here, not by fpdf2's ``multi_cell``/``table``: fpdf2
re-measures the whole line for every character it adds (quadratic per line, ~1 ms per full-width
line), while words measured once from the font's width table keep a two-page summary at a few
milliseconds of layout. Every string is measured before it is drawn, which is also where a
character's font is chosen (:meth:`FontSet.advance`) and a fallback face is added to the document
the first time it is needed. A line entirely in the primary face (nearly all of them) is written
straight into the page (:func:`archive.render.program.show_text`, placed exactly where ``cell``
would place it); a line with another face or the page-count alias goes through ``FPDF.cell``,
which splits it into runs per face.
"""

from __future__ import annotations

from collections.abc import Sequence

from fpdf import FPDF

from archive.render.fonts import FontSet
from archive.render.model import DASH, Field, Fields, Section, Summary, Table, Text
from archive.render.program import FixedProgram, show_text
from archive.render.style import (
    BODY,
    BOTTOM,
    FILL,
    GRAY_TEXT,
    LABEL,
    MARGIN,
    PAD,
    PAGE_H,
    PAGES_ALIAS,
    PT,
    RULE,
    SMALL,
    TOP,
    WIDTH,
    line_height,
)
from archive.render.tables import draw_table


class SummaryPdf(FPDF):
    """One discharge summary; draw it with :meth:`draw`, then call ``output()``."""

    def __init__(self, fonts: FontSet, summary: Summary) -> None:
        super().__init__(orientation="P", unit="mm", format="A4", enforce_compliance="PDF/A-3B")
        self._fonts = fonts
        self._summary = summary
        self._primary = fonts.primary_family
        self._fallbacks: list[str] = []
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, TOP, MARGIN)
        self.c_margin = 0
        self.set_line_width(0.2)
        self.alias_nb_pages(PAGES_ALIAS)
        fonts.install(self, self._primary)
        fonts.install(self, self._primary + "B")
        # The primary face is a fixed subset: its widths and codes are plain look-ups.
        self._fixed = (fonts.fixed(bold=False), fonts.fixed(bold=True))

    # --- fonts and measuring -----------------------------------------------------------------

    def get_fallback_font(self, char: str, style: str = "") -> str | None:
        # Same choice as measure(): the first face in FontSet order that covers the character.
        return self._fonts.advance(char, "B" in style)[0]

    def measure(self, text: str, size: float, bold: bool = False) -> float:
        try:  # the common case: every character is in the primary face
            total = sum(map(self._fixed[bold][1].advances.__getitem__, text))
        except KeyError:
            total = self._measure_mixed(text, bold)
        return total * size / 1000 * PT

    def _measure_mixed(self, text: str, bold: bool) -> float:
        total = 0.0
        for char in text:
            key, width = self._fonts.advance(char, bold)
            if key not in self.fonts:
                self._add_fallback(key)
            total += width
        return total

    def _add_fallback(self, key: str) -> None:
        self._fonts.install(self, key)
        family = key.removesuffix("B")
        if family not in self._fallbacks:
            self._fallbacks.append(family)
            self.set_fallback_fonts(self._fallbacks, exact_match=False)

    def wrap(self, text: str, width: float, size: float, bold: bool = False) -> list[str]:
        """Greedy word wrap; a word wider than the line is broken between characters."""
        space = self.measure(" ", size, bold)
        lines: list[str] = []
        line, line_w = "", 0.0
        for word in text.split(" "):
            word_w = self.measure(word, size, bold)
            if line and line_w + space + word_w <= width:
                line, line_w = f"{line} {word}", line_w + space + word_w
                continue
            if line:
                lines.append(line)
            while word_w > width and len(word) > 1:
                head = self._fitting_prefix(word, width, size, bold)
                lines.append(head)
                word = word[len(head) :]
                word_w = self.measure(word, size, bold)
            line, line_w = word, word_w
        lines.append(line)
        return lines

    def _fitting_prefix(self, word: str, width: float, size: float, bold: bool) -> str:
        used = 0.0
        for n, char in enumerate(word):
            used += self.measure(char, size, bold)
            if used > width:
                return word[: max(n, 1)]
        return word

    def _shortened(self, text: str, width: float, size: float) -> str:
        if self.measure(text, size) <= width:
            return text
        while text and self.measure(text + "…", size) > width:
            text = text[:-1]
        return text.rstrip() + "…"

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
        """One line of text in a cell at (x, y) of width ``w`` (0: to the right margin)."""
        fontkey, program = self._fixed[bold]
        # fpdf2 substitutes the page-count alias when it writes the file: leave it to cell().
        codes = None if PAGES_ALIAS in text else _encode(program, text)
        if codes is None:  # the alias, or a character from another face
            self._put_cell(x, y, text, size, bold, w, align)
            return
        w = w or self.w - self.r_margin - x
        if text:
            # Where FPDF.cell would place it (c_margin is 0): aligned in the cell, baseline at
            # mid-height less 0.3 of the font size.
            width = sum(map(program.advances.__getitem__, text)) * size / 1000 * PT
            dx = w - width if align == "R" else (w - width) / 2 if align == "C" else 0.0
            baseline = self.h - y - 0.5 * line_height(size) - 0.3 * size * PT
            show_text(self, fontkey, size, (x + dx) * self.k, baseline * self.k, codes)
        # Leave the position where set_xy() + cell() leave it; the layout builds on that.
        self.x, self.y = x + w, y

    def _put_cell(
        self, x: float, y: float, text: str, size: float, bold: bool, w: float, align: str
    ) -> None:
        # fpdf2's own path: splits fallback-font runs and substitutes the page count.
        self.measure(text.replace(PAGES_ALIAS, "0"), size, bold)  # installs the fonts it needs
        self.set_font(self._primary, "B" if bold else "", size)
        self.set_xy(x, y)
        self.cell(w, line_height(size), text, align=align)

    # --- page furniture ------------------------------------------------------------------------

    def header(self) -> None:
        if self.page == 1:
            self._first_page_header()
            return
        s = self._summary
        self.set_text_color(*GRAY_TEXT)
        right = f"Tóm tắt hồ sơ bệnh án — Số HSBA {s.record_number}"
        right_w = self.measure(right, LABEL)
        # A running header only: page 1 prints the facility name in full.
        left = self._shortened(s.facility_name, WIDTH - right_w - 4, LABEL)
        self.put(MARGIN, 8, left, LABEL)
        self.put(MARGIN, 8, right, LABEL, w=WIDTH, align="R")
        self.set_text_color(0, 0, 0)
        self._rule(12)
        self.y = TOP

    def footer(self) -> None:
        self._rule(PAGE_H - 14)
        self.set_text_color(*GRAY_TEXT)
        left = f"Mã đợt điều trị / Encounter: {self._summary.encounter_id}"
        self.put(MARGIN, PAGE_H - 13, left, LABEL, w=WIDTH * 0.7)
        page = f"Trang {self.page}/{PAGES_ALIAS}"
        self.put(MARGIN + WIDTH * 0.7, PAGE_H - 13, page, SMALL, w=WIDTH * 0.3, align="R")
        self.set_text_color(0, 0, 0)

    def _first_page_header(self) -> None:
        s = self._summary
        left_w, right_x = WIDTH * 0.52, MARGIN + WIDTH * 0.52
        y = TOP
        for line in self.wrap(s.facility_name, left_w, BODY, bold=True):
            self.put(MARGIN, y, line, BODY, bold=True)
            y += line_height(BODY)
        self.put(MARGIN, y, f"Mã cơ sở KCB / Facility code: {s.facility_code}", SMALL)
        y = max(y + line_height(SMALL), TOP + 2 * line_height(BODY))
        nation = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
        self.put(right_x, TOP, nation, SMALL, bold=True, w=WIDTH - left_w, align="C")
        motto = "Độc lập - Tự do - Hạnh phúc"
        self.put(
            right_x, TOP + line_height(SMALL), motto, SMALL, bold=True, w=WIDTH - left_w, align="C"
        )
        y += 4
        self.put(MARGIN, y, "TÓM TẮT HỒ SƠ BỆNH ÁN", 15, bold=True, w=WIDTH, align="C")
        y += line_height(15)
        self.put(MARGIN, y, "DISCHARGE SUMMARY", SMALL, w=WIDTH, align="C")
        y += line_height(SMALL) + 1
        ids = f"Số HSBA / Record no.: {s.record_number}   ·   Mã đợt điều trị / Encounter: "
        self.put(MARGIN, y, ids + s.encounter_id, SMALL, w=WIDTH, align="C")
        self.y = y + line_height(SMALL) + 3

    def _rule(self, y: float) -> None:
        self.set_draw_color(*RULE)
        self.line(MARGIN, y, MARGIN + WIDTH, y)
        self.set_draw_color(0, 0, 0)

    # --- flow ------------------------------------------------------------------------------------

    def draw(self) -> None:
        self.add_page()
        for section in self._summary.sections:
            self._section(section)

    def new_page(self) -> None:
        self.add_page()

    def room(self, height: float) -> bool:
        return self.y + height <= BOTTOM

    def _section(self, section: Section) -> None:
        band = line_height(BODY) + 1.6
        if not self.room(band + 3 * line_height(BODY)):  # no heading alone at a page's foot
            self.new_page()
        self.set_fill_color(*FILL)
        self.rect(MARGIN, self.y, WIDTH, band, style="F")
        self.put(MARGIN + PAD, self.y + 0.8, section.title, BODY, bold=True, w=WIDTH - 2 * PAD)
        self.y += band + 1.5
        for block in section.blocks:
            if isinstance(block, Fields):
                self._fields(block)
            elif isinstance(block, Table):
                draw_table(self, block)
            else:
                self._text(block)
        self.y += 2.5

    def _text(self, text: Text) -> None:
        lh = line_height(BODY)
        for paragraph in text.paragraphs:
            for line in self.wrap(paragraph, WIDTH, BODY):
                if not self.room(lh):
                    self.new_page()
                self.put(MARGIN, self.y, line, BODY)
                self.y += lh
            self.y += 1.2

    def _fields(self, fields: Fields) -> None:
        for row in _pair_up(fields.items):
            col_w = WIDTH if len(row) == 1 and row[0].wide else WIDTH / 2 - 2
            cells = [self._field_lines(f, col_w) for f in row]
            height = (
                max(
                    len(labels) * line_height(LABEL) + len(values) * line_height(BODY)
                    for labels, values in cells
                )
                + 1.2
            )
            if not self.room(height):
                self.new_page()
            if not self.room(height):  # taller than a page: let each cell flow on its own
                for labels, values in cells:
                    self._flow(labels, LABEL, GRAY_TEXT)
                    self._flow(values, BODY)
                continue
            top = self.y
            for n, (labels, values) in enumerate(cells):
                self.y = top
                x = MARGIN + n * (WIDTH / 2 + 2)
                self._lines(x, labels, LABEL, color=GRAY_TEXT)
                self._lines(x, values, BODY)
            self.y = top + height

    def _field_lines(self, field: Field, width: float) -> tuple[list[str], list[str]]:
        return self.wrap(field.label, width, LABEL), self.wrap(field.value or DASH, width, BODY)

    def _lines(
        self, x: float, lines: Sequence[str], size: float, color: tuple[int, int, int] = (0, 0, 0)
    ) -> None:
        self.set_text_color(*color)
        for line in lines:
            self.put(x, self.y, line, size)
            self.y += line_height(size)
        self.set_text_color(0, 0, 0)

    def _flow(
        self, lines: Sequence[str], size: float, color: tuple[int, int, int] = (0, 0, 0)
    ) -> None:
        for line in lines:
            if not self.room(line_height(size)):
                self.new_page()
            self._lines(MARGIN, [line], size, color)


def _encode(program: FixedProgram, text: str) -> str | None:
    """``text`` as the fixed face's hex codes, or None if a character is not in the face."""
    try:
        return "".join(map(program.encoded.__getitem__, text))
    except KeyError:
        return None


def _pair_up(fields: Sequence[Field]) -> list[list[Field]]:
    rows: list[list[Field]] = []
    for field in fields:
        if field.wide or not rows or len(rows[-1]) == 2 or rows[-1][0].wide:
            rows.append([field])
        else:
            rows[-1].append(field)
    return rows
