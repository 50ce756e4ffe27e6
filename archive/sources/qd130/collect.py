"""The QĐ 130 collector: finished encounters from a directory of ``GIAMDINHHS`` / HOSO files.

Two streaming passes keep memory at one file chunk plus the index of the window's encounters:

1. every ``*.xml`` file is streamed (:mod:`~archive.sources.qd130.envelope`); of each HOSO only
   its XML1 is decoded, for ``MA_LK`` and ``NGAY_RA``; a HOSO discharged in the window is indexed
   by ``MA_LK`` with its byte range;
2. in ``MA_LK`` order each indexed HOSO is read back by range, checked table by table
   (:mod:`~archive.sources.qd130.hoso`) and mapped (:mod:`~archive.sources.qd130.mapping`).

Pass 1 also checks a file's facility signature (``CHUKYDONVI``,
:mod:`~archive.sources.qd130.signature`) when the file holds a HOSO of the window: the result
travels with each of its bundles, and an invalid signature holds the whole file back.

Nothing bad raises: a broken or hostile file is one ``FILE`` entry (its HOSO are held back with
it), a bad HOSO an ``ENCOUNTER`` entry, two different HOSO with one ``MA_LK`` in the window are
both held back (``duplicate-id``; identical copies are archived once). Only a directory without
any XML file raises :class:`SourceError`. What is embedded is the HOSO's bytes as the file holds
them; a file holding a single HOSO is embedded whole, so its facility signature stays checkable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from archive.core.errors import SourceError
from archive.sources.model import CollectedItem, FacilitySignature, Window
from archive.sources.qd130 import fields
from archive.sources.qd130.envelope import EnvelopeReader, HosoRef
from archive.sources.qd130.fields import FieldError
from archive.sources.qd130.hardening import XmlRefusedError, decode_base64, parse_inner
from archive.sources.qd130.hoso import MAX_DEPTH, Limits, read_hoso
from archive.sources.qd130.mapping import to_bundle
from archive.sources.qd130.signature import FacilityTrust, too_large_to_check, verify_file
from archive.sources.quarantine import QuarantineEntry, QuarantineReason, QuarantineScope

DEFAULT_LIMITS: Final = Limits(
    max_hoso_bytes=64 << 20, max_table_bytes=32 << 20, max_text_chars=1 << 20
)
FILE_SAMPLE: Final = 64 << 10  # what a FILE entry keeps of a refused file


@dataclass(frozen=True, slots=True)
class _Place:
    file: Path
    ordinal: int
    start: int
    end_tag: int
    facility: str | None
    whole: bool  # the file's only HOSO: embed the file
    signature: FacilitySignature


def discover(source_dir: Path) -> list[Path]:
    """The ``*.xml`` files of ``source_dir``, by name."""
    if not source_dir.is_dir():
        raise SourceError(f"source directory {source_dir} does not exist or is not a directory")
    found = sorted(p for p in source_dir.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    if not found:
        raise SourceError(
            f"no QĐ 130 XML files in {source_dir}: copy the HIS's GIAMDINHHS export there"
        )
    return found


def collect(
    source_dir: Path,
    *,
    window: Window,
    limits: Limits = DEFAULT_LIMITS,
    trust: FacilityTrust | None = None,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[CollectedItem]:
    files = discover(Path(source_dir))
    return _run(files, window, limits, trust or FacilityTrust(), on_selected)


def _run(
    files: list[Path],
    window: Window,
    limits: Limits,
    trust: FacilityTrust,
    on_selected: Callable[[int], None] | None,
) -> Iterator[CollectedItem]:
    index: dict[str, list[_Place]] = defaultdict(list)
    for path in files:
        yield from _index_file(path, window, limits, trust, index)
    if on_selected is not None:
        on_selected(len(index))
    for key in sorted(index):
        yield from _build(key, index[key], window, limits)


def _index_file(
    path: Path,
    window: Window,
    limits: Limits,
    trust: FacilityTrust,
    index: dict[str, list[_Place]],
) -> Iterator[QuarantineEntry]:
    # (MA_LK, ordinal, start, end_tag, facility): never the HosoRef, whose XML1 text would keep
    # a few kB per HOSO alive until the file's end (150 MB on a 500 MB day file).
    found: list[tuple[str, int, int, int, str | None]] = []
    entries: list[QuarantineEntry] = []
    reader = EnvelopeReader(path.name, max_hoso_bytes=limits.max_hoso_bytes)
    try:
        with path.open("rb") as stream, path.open("rb", buffering=0) as back:
            for ref in reader.hosos(stream):
                try:
                    key = _selected(ref, window, limits)
                except (XmlRefusedError, FieldError) as e:
                    raw = _slice(back, ref, limits)
                    entries.append(_entry(path, ref.ordinal, e.reason, e.detail, raw, None))
                    continue
                if key is not None:
                    found.append((key, ref.ordinal, ref.start, ref.end_tag, ref.facility))
        signature = _signature(path, reader.signed, limits, trust) if found else None
    except XmlRefusedError as e:
        yield _file_entry(path, e)
        return
    except OSError as e:
        raise SourceError(f"cannot read {path.name} ({e.strerror}): check the disk") from e
    yield from entries
    whole = reader.count == 1
    for key, ordinal, start, end_tag, facility in found:
        assert signature is not None  # checked whenever a HOSO was found
        index[key].append(_Place(path, ordinal, start, end_tag, facility, whole, signature))


def _signature(path: Path, signed: bool, limits: Limits, trust: FacilityTrust) -> FacilitySignature:
    """The file's facility signature; the file is read whole only when it carries one and is
    within the limit (a signature covers every byte)."""
    if not signed:
        return FacilitySignature(status="absent")
    limit = limits.max_signed_file_bytes
    if path.stat().st_size > limit:
        return too_large_to_check(limit)
    with path.open("rb") as handle:
        data = handle.read(limit + 1)  # bounded even if the file grew meanwhile
    return verify_file(data, trust, max_bytes=limit)


def _selected(ref: HosoRef, window: Window, limits: Limits) -> str | None:
    """The HOSO's MA_LK when it was discharged in the window, else None."""
    what = f"HOSO {ref.ordinal} XML1"
    if ref.oversized:
        raise XmlRefusedError(QuarantineReason.OVERSIZED_XML, f"HOSO {ref.ordinal} is too large")
    if ref.xml1 is None:
        raise XmlRefusedError(QuarantineReason.MALFORMED_XML, f"HOSO {ref.ordinal} has no XML1")
    data = decode_base64(ref.xml1, what, limit=limits.max_table_bytes)
    root = parse_inner(data, what, max_depth=MAX_DEPTH, max_text=limits.max_text_chars)
    key = (root.findtext("MA_LK") or "").strip()
    end = (root.findtext("NGAY_RA") or "").strip()
    if not key:
        raise FieldError(QuarantineReason.MALFORMED_RESOURCE, f"{what} lacks MA_LK")
    return key if fields.moment("XML1 NGAY_RA", end, window.tz) in window else None


def _build(
    key: str, places: list[_Place], window: Window, limits: Limits
) -> Iterator[CollectedItem]:
    copies = []
    for place in places:
        with place.file.open("rb", buffering=0) as handle:
            sent = _read_range(handle, place.start, place.end_tag, limits)
            whole = _read_range(handle, 0, None, limits) if place.whole else sent
            if len(whole) > limits.max_hoso_bytes:  # never embed a truncated file
                whole = sent
        copies.append((place, sent, whole))
    if len({whole for _, _, whole in copies}) > 1:
        for place, _, whole in copies:
            detail = f"HOSO {place.ordinal}: {len(copies)} different HOSO carry this MA_LK"
            yield _entry(
                place.file, place.ordinal, QuarantineReason.DUPLICATE_ID, detail, whole, key
            )
        return
    place, hoso_bytes, whole = copies[0]
    try:
        hoso = read_hoso(hoso_bytes, window.tz, limits)
        yield to_bundle(
            hoso, whole, facility=place.facility, tz=window.tz, signature=place.signature
        )
    except (XmlRefusedError, FieldError) as e:
        detail = f"HOSO {place.ordinal}: {e.detail}"
        yield _entry(place.file, place.ordinal, e.reason, detail, whole, key)


def _read_range(handle: IO[bytes], start: int, end_tag: int | None, limits: Limits) -> bytes:
    handle.seek(start)
    if end_tag is None:
        return handle.read(limits.max_hoso_bytes + 1)
    head = handle.read(end_tag - start + 256)  # the end tag "</HOSO   >" lies in the tail
    close = head.find(b">", end_tag - start)
    return head[: close + 1] if close >= 0 else head


def _slice(handle: IO[bytes], ref: HosoRef, limits: Limits) -> bytes:
    """The HOSO's bytes for its quarantine entry; of one too large, only its beginning."""
    if ref.end_tag - ref.start <= limits.max_hoso_bytes:
        return _read_range(handle, ref.start, ref.end_tag, limits)
    handle.seek(ref.start)
    return handle.read(FILE_SAMPLE)


def _entry(
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


def _file_entry(path: Path, problem: XmlRefusedError) -> QuarantineEntry:
    with path.open("rb") as handle:
        sample = handle.read(FILE_SAMPLE)
    return QuarantineEntry(
        reason=problem.reason,
        scope=QuarantineScope.FILE,
        source_file=path.name,
        line_number=0,
        resource_type=None,
        resource_id=None,
        encounter_id=None,
        detail=f"{problem.detail}; every HOSO of the file is held back (first "
        f"{FILE_SAMPLE // 1024} KiB kept)",
        raw_line=sample,
    )
