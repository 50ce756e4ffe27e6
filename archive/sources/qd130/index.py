"""Pass 1 over one file: where its HOSO of the window lie, which HOSO it refuses, its signature.

:func:`index_files` runs in a worker of the collector's pool (or in-process), a few files per
task; what it returns is compact and picklable: no HOSO bytes, only byte ranges (a refused HOSO
is read back by the collector when it is reported, so a file full of bad HOSO costs no memory
here). The facility signature (``CHUKYDONVI``) is checked here too, the costliest step of the
pass (signxml parses and canonicalises the file several times), so it runs on every core.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from archive.core.errors import SourceError
from archive.sources.model import FacilitySignature, Window
from archive.sources.qd130 import fields
from archive.sources.qd130.envelope import EnvelopeReader, HosoRef
from archive.sources.qd130.fields import FieldError
from archive.sources.qd130.hardening import XmlRefusedError, decode_base64, parse_inner
from archive.sources.qd130.hoso import MAX_DEPTH, Limits
from archive.sources.qd130.signature import FacilityTrust, too_large_to_check, verify_file
from archive.sources.quarantine import QuarantineReason


@dataclass(frozen=True, slots=True)
class Refusal:
    """A HOSO refused in pass 1; ``start``/``end_tag`` say where to read it back."""

    ordinal: int
    reason: QuarantineReason
    detail: str
    start: int
    end_tag: int


@dataclass(frozen=True, slots=True)
class Found:
    """A HOSO discharged in the window."""

    key: str  # MA_LK
    ordinal: int
    start: int
    end_tag: int
    facility: str | None


@dataclass(frozen=True, slots=True)
class FileIndex:
    """What pass 1 learnt of one file. ``refused`` (reason, detail) holds the whole file back
    (``refusals`` and ``found`` are then empty)."""

    path: Path
    refused: tuple[QuarantineReason, str] | None = None
    refusals: tuple[Refusal, ...] = ()
    found: tuple[Found, ...] = ()
    whole: bool = False  # the file's only HOSO: embed the file
    signature: FacilitySignature | None = None  # checked whenever a HOSO was found


def index_files(
    paths: list[Path], window: Window, limits: Limits, trusted: tuple[bytes, ...]
) -> list[FileIndex]:
    """One pool task: :func:`index_file` for each of ``paths``, in order. ``trusted`` is the
    facility certificates' DER (picklable; parsed once per process)."""
    trust = _trust(trusted)
    return [index_file(path, window, limits, trust) for path in paths]


@functools.lru_cache(maxsize=4)
def _trust(trusted: tuple[bytes, ...]) -> FacilityTrust:
    return FacilityTrust.of(x509.load_der_x509_certificate(der) for der in trusted)


def index_file(path: Path, window: Window, limits: Limits, trust: FacilityTrust) -> FileIndex:
    found: list[Found] = []
    refusals: list[Refusal] = []
    reader = EnvelopeReader(path.name, max_hoso_bytes=limits.max_hoso_bytes)
    try:
        with path.open("rb") as stream:
            visit(reader.hosos(stream), window, limits, found, refusals)
        signature = file_signature(path, reader.signed, limits, trust) if found else None
    except XmlRefusedError as e:
        return FileIndex(path, refused=(e.reason, e.detail))
    except OSError as e:
        raise SourceError(f"cannot read {path.name} ({e.strerror}): check the disk") from e
    return FileIndex(
        path,
        refusals=tuple(refusals),
        found=tuple(found),
        whole=reader.count == 1,
        signature=signature,
    )


def visit(
    refs: Iterable[HosoRef],
    window: Window,
    limits: Limits,
    found: list[Found],
    refusals: list[Refusal],
) -> None:
    """Each HOSO of ``refs`` found (discharged in the window) or refused, in order."""
    for ref in refs:
        try:
            key = _selected(ref, window, limits)
        except (XmlRefusedError, FieldError) as e:
            refusals.append(Refusal(ref.ordinal, e.reason, e.detail, ref.start, ref.end_tag))
            continue
        if key is not None:
            found.append(Found(key, ref.ordinal, ref.start, ref.end_tag, ref.facility))


def file_signature(
    path: Path, signed: bool, limits: Limits, trust: FacilityTrust
) -> FacilitySignature:
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
