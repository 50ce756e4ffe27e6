"""Pass 2 for a run of episodes: each indexed HOSO read back and checked table by table.

:func:`build_chunk` runs in a worker of the collector's pool (or in-process): it takes episodes
(``MA_LK`` and where each copy of its HOSO lies) in ``MA_LK`` order and returns their items in
the same order, a bundle or a quarantine entry each (two for a ``MA_LK`` carried by two
different HOSO). The worker reads the bytes itself, so only byte ranges travel to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from archive.sources.model import CollectedItem, FacilitySignature, Window
from archive.sources.qd130.fields import FieldError
from archive.sources.qd130.hardening import XmlRefusedError
from archive.sources.qd130.hoso import Limits, read_hoso
from archive.sources.qd130.mapping import to_bundle
from archive.sources.quarantine import QuarantineEntry, QuarantineReason, QuarantineScope


@dataclass(frozen=True, slots=True)
class Place:
    """Where one copy of an episode's HOSO lies, and what pass 1 learnt of its file."""

    file: Path
    ordinal: int
    start: int
    end_tag: int
    facility: str | None
    whole: bool  # the file's only HOSO: embed the file
    signature: FacilitySignature


Episode = tuple[str, list[Place]]


class OpenFiles:
    """Read handles kept open from one episode to the next: most HOSO of a day lie in one day
    file, read back in ``MA_LK`` order. At most ``most`` are open at once."""

    def __init__(self, most: int = 8) -> None:
        self._most = most
        self._open: dict[Path, IO[bytes]] = {}

    def __enter__(self) -> OpenFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: Path) -> IO[bytes]:
        handle = self._open.get(path)
        if handle is None:
            if len(self._open) >= self._most:  # the oldest goes (a single-HOSO file, read once)
                self._open.pop(next(iter(self._open))).close()
            handle = self._open[path] = path.open("rb", buffering=0)
        return handle

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def build_chunk(episodes: list[Episode], window: Window, limits: Limits) -> list[CollectedItem]:
    """One pool task: the items of ``episodes``, in order."""
    with OpenFiles() as files:
        return [
            item for key, places in episodes for item in build(key, places, window, limits, files)
        ]


def build(
    key: str, places: list[Place], window: Window, limits: Limits, files: OpenFiles
) -> Iterator[CollectedItem]:
    copies = []
    for place in places:
        handle = files.get(place.file)
        sent = read_range(handle, place.start, place.end_tag, limits)
        whole = read_range(handle, 0, None, limits) if place.whole else sent
        if len(whole) > limits.max_hoso_bytes:  # never embed a truncated file
            whole = sent
        copies.append((place, sent, whole))
    if len({whole for _, _, whole in copies}) > 1:
        for place, _, whole in copies:
            detail = f"HOSO {place.ordinal}: {len(copies)} different HOSO carry this MA_LK"
            yield entry(
                place.file, place.ordinal, QuarantineReason.DUPLICATE_ID, detail, whole, key
            )
        return
    place, hoso_bytes, whole = copies[0]
    try:
        hoso = read_hoso(hoso_bytes, window.tz, limits)
        signature = with_inner(place.signature, hoso.signed)
        yield to_bundle(hoso, whole, facility=place.facility, tz=window.tz, signature=signature)
    except (XmlRefusedError, FieldError) as e:
        detail = f"HOSO {place.ordinal}: {e.detail}"
        yield entry(place.file, place.ordinal, e.reason, detail, whole, key)


def with_inner(signature: FacilitySignature, tables: tuple[str, ...]) -> FacilitySignature:
    """The file's facility signature, told about XML signatures inside the HOSO's tables.

    QĐ 130 defines one signature, the facility's over the whole file (``CHUKYDONVI``); one a
    HIS puts inside a table's Base64 content is kept in the original XML but checked by no one
    here. A file without ``CHUKYDONVI`` is then "unverified", not "absent" (a signature is
    there, unchecked); a checked ``CHUKYDONVI`` keeps its status (it covers those bytes too)."""
    if not tables:
        return signature
    where = f"an XML signature inside {', '.join(tables)} (not CHUKYDONVI) was not checked"
    if signature.status == "absent":
        return replace(signature, status="unverified", detail=where)
    return replace(signature, detail="; ".join(d for d in (signature.detail, where) if d))


def read_range(handle: IO[bytes], start: int, end_tag: int | None, limits: Limits) -> bytes:
    handle.seek(start)
    if end_tag is None:
        return handle.read(limits.max_hoso_bytes + 1)
    head = handle.read(end_tag - start + 256)  # the end tag "</HOSO   >" lies in the tail
    close = head.find(b">", end_tag - start)
    return head[: close + 1] if close >= 0 else head


def entry(
    path: Path,
    ordinal: int,
    reason: QuarantineReason,
    detail: str,
    raw: bytes,
    key: str | None,
) -> QuarantineEntry:
    return QuarantineEntry(
        reason=reason,
        scope=QuarantineScope.ENCOUNTER,
        source_file=path.name,
        line_number=ordinal,
        resource_type="HOSO",
        resource_id=key,
        encounter_id=key,
        detail=detail,
        raw_line=raw,
    )
