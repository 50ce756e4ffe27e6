"""Where each HOSO of the window lies, by ``MA_LK``: what the collector holds between its passes.

A big hospital's day is tens of thousands of HOSO, all indexed before pass 2 begins. As objects
(a :class:`~archive.sources.qd130.build.Place`, a list and a key each) they took about 500 bytes
apiece, a third of the collector's memory on a 500 MB day; here a HOSO is a row of five arrays
and a key in a dict of row numbers (about 150 bytes), and its ``Place`` is made when pass 2
asks for it. A file's path, signature and whether it is embedded whole are kept once per file.
"""

from __future__ import annotations

from array import array
from pathlib import Path

from archive.sources.model import FacilitySignature
from archive.sources.qd130.build import Place
from archive.sources.qd130.index import FileIndex, Found


class Rows:
    """HOSO found in one file, in its order, as columns (what :class:`Places` absorbs)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.ordinal = array("L")
        self.start = array("Q")
        self.end = array("Q")
        self.facility: list[str | None] = []

    def append(self, f: Found, facility: str | None) -> None:
        self.keys.append(f.key)
        self.ordinal.append(f.ordinal)
        self.start.append(f.start)
        self.end.append(f.end_tag)
        self.facility.append(facility)

    def __len__(self) -> int:
        return len(self.keys)

    def found(self) -> list[Found]:
        return [
            Found(k, self.ordinal[r], self.start[r], self.end[r], self.facility[r])
            for r, k in enumerate(self.keys)
        ]


class Places:
    def __init__(self) -> None:
        self._rows: dict[str, int | list[int]] = {}  # a list: one MA_LK in several HOSO
        self._files: list[tuple[Path, bool, FacilitySignature]] = []
        self._facilities: dict[str | None, int] = {}
        self._facility_names: list[str | None] = []
        self._file = array("L")
        self._ordinal = array("L")
        self._start = array("Q")
        self._end = array("Q")
        self._facility = array("L")

    def add(self, found: FileIndex, rows: Rows | None = None) -> None:
        """The HOSO pass 1 found in one file, in the file's order: ``found.found``, or ``rows``
        (a file read in ranges)."""
        if not found.found and not rows:
            return
        assert found.signature is not None  # checked whenever a HOSO was found
        self._files.append((found.path, found.whole, found.signature))
        file = len(self._files) - 1
        if rows is None:
            rows = Rows()
            for f in found.found:
                rows.append(f, f.facility)
        first = len(self._start)
        for r, key in enumerate(rows.keys):
            row = first + r
            self._file.append(file)
            self._facility.append(self._facility_number(rows.facility[r]))
            have = self._rows.get(key)
            if have is None:
                self._rows[key] = row
            elif isinstance(have, int):
                self._rows[key] = [have, row]
            else:
                have.append(row)
        self._ordinal.extend(rows.ordinal)
        self._start.extend(rows.start)
        self._end.extend(rows.end)

    def _facility_number(self, facility: str | None) -> int:
        number = self._facilities.get(facility)
        if number is None:
            number = self._facilities[facility] = len(self._facility_names)
            self._facility_names.append(facility)
        return number

    def __len__(self) -> int:
        """How many ``MA_LK``."""
        return len(self._rows)

    def in_order(self) -> list[str]:
        """Every ``MA_LK``, sorted (pass 2's order)."""
        return sorted(self._rows)

    def places(self, key: str) -> list[Place]:
        """Where ``key``'s HOSO lie, in the order they were added."""
        rows = self._rows[key]
        return [self._place(r) for r in ([rows] if isinstance(rows, int) else rows)]

    def _place(self, row: int) -> Place:
        path, whole, signature = self._files[self._file[row]]
        facility = self._facility_names[self._facility[row]]
        start, end = self._start[row], self._end[row]
        return Place(path, self._ordinal[row], start, end, facility, whole, signature)
