"""Line numbers for a policy file, so every refusal can name the line to fix.

tomllib returns plain dicts and keeps no positions; the records officer who edits the file needs
"line 42", not a key path. :class:`Locator` re-reads the text for table headers and ``key =``
lines, which covers how policy files are written; anything else falls back to the enclosing
table's line. It also refuses a class or rule declared twice, which tomllib reports without
saying which table is meant.
"""

from __future__ import annotations

import re
from typing import Final

from retention.errors import PolicyError

_HEADER: Final = re.compile(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?")
_KEY: Final = re.compile(r"\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


class Locator:
    """Where tables, keys and values of one policy text are (1-based lines)."""

    def __init__(self, text: str, source: str) -> None:
        self.source, self.lines = source, text.splitlines()
        self.tables: dict[tuple[str, ...], int] = {}
        self.starts: list[int] = []
        for number, line in enumerate(self.lines, 1):
            header = _HEADER.fullmatch(line)
            if header is None:
                continue
            name = tuple(p.strip().strip("\"'") for p in header.group(1).split("."))
            if name in self.tables and len(name) == 2 and name[0] in ("classes", "rules"):
                kind = "class" if name[0] == "classes" else "rule"
                raise PolicyError(
                    f"{kind} {name[1]!r} is declared twice (first at line {self.tables[name]}): "
                    "keep one table and merge the two",
                    source=source,
                    line=number,
                )
            self.tables.setdefault(name, number)
            self.starts.append(number)

    def table(self, path: tuple[str, ...]) -> int | None:
        """The header line of a table; for the top level, the first table's (keys go above it)."""
        if not path:
            return self.starts[0] if self.starts else max(len(self.lines), 1)
        return self.tables.get(path)

    def key(self, path: tuple[str, ...], key: str) -> int | None:
        """The ``key =`` line in a table; for a sub-table (``[classes]``), its first header."""
        first, last = self._span(path) if not path or path in self.tables else (1, 0)
        for number in range(first, last + 1):
            found = _KEY.match(self.lines[number - 1])
            if found and found.group(1).strip("\"'") == key:
                return number
        inner = [n for name, n in self.tables.items() if name[: len(path) + 1] == (*path, key)]
        return min(inner) if inner else self.table(path)

    def value(self, path: tuple[str, ...], key: str, value: str) -> int | None:
        """The line holding ``value`` in the list under ``key``; else the key's line."""
        start = self.key(path, key)
        _, last = self._span(path)
        if start is None:
            return None
        for number in range(start, last + 1):
            text = self.lines[number - 1]
            if number > start and _KEY.match(text):
                break
            if f'"{value}"' in text or f"'{value}'" in text:
                return number
        return start

    def _span(self, path: tuple[str, ...]) -> tuple[int, int]:
        first = self.tables.get(path, 0) + 1 if path else 1
        later = [s for s in self.starts if s >= first]
        return first, (later[0] - 1 if later else len(self.lines))
