"""Page geometry, type sizes and colours of the discharge summary (millimetres and points)."""

from __future__ import annotations

PT = 25.4 / 72  # mm per point
PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 15.0
TOP = 14.0
BOTTOM = PAGE_H - 18.0  # content stops here; the footer sits below
WIDTH = PAGE_W - 2 * MARGIN
PAD = 1.2  # table cell padding
GRAY_TEXT = (85, 85, 85)
RULE = (150, 150, 150)
FILL = (232, 232, 232)

BODY, SMALL, LABEL = 9.0, 8.0, 7.0  # font sizes in points

# fpdf2 replaces its page-count alias in *all* text, "{nb}" by default: a note containing "{nb}"
# would print a number. U+2063 is a format character the model strips from every input string.
PAGES_ALIAS = "\u2063"


def line_height(size: float) -> float:
    return size * PT * 1.32
