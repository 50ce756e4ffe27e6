"""Quarantine: what a source could not archive, why, and the bytes it came from.

Pure data. Entries are sealed and stored by the write path like any record (``raw_line`` and the
raw ids hold PHI, are never shown by ``repr`` and never leave in :meth:`QuarantineEntry.metadata`):
``detail`` is built from fixed phrases, file names, line numbers, JSON paths and code points only,
and ids leave only as digests made by the caller's function. The write path passes the keyring's
keyed :meth:`~archive.seal.ArchiveKeys.quarantine_digest`: a plain hash of a short id could be
reversed by trying them all, and sources hold no key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class QuarantineReason(StrEnum):
    """Why something was held back. The values are stable: they are stored and reported."""

    MALFORMED_JSON = "malformed-json"
    """Not UTF-8, not JSON, or not a JSON object."""
    MALFORMED_RESOURCE = "malformed-resource"
    """JSON, but not a usable resource: wrong ``resourceType`` for the file, a required element
    missing or of the wrong shape (Encounter without subject or serviceProvider, Organization
    without its MA_CSKCB identifier, nesting too deep)."""
    OVERSIZED_LINE = "oversized-line"
    """A line longer than the collector's limit; ``raw_line`` holds only its beginning."""
    UNRESOLVED_REFERENCE = "unresolved-reference"
    """The Encounter's Patient, Organization, Practitioner or diagnosis Condition (or a
    Patient/Organization/Practitioner any of its resources points at) is not in the export."""
    INCONSISTENT_REFERENCE = "inconsistent-reference"
    """A resource of the encounter belongs to another patient (its ``subject`` differs)."""
    MISSING_PERIOD_END = "missing-period-end"
    """A finished Encounter without ``period.end``: its day cannot be known."""
    INVALID_DATETIME = "invalid-datetime"
    """``period.start``/``period.end`` unparseable, without a UTC offset, or end before start."""
    INVALID_ICD10 = "invalid-icd10"
    """A Condition without an ICD-10 coding, or with a code that fails the format/chapter check."""
    INVALID_CODE = "invalid-code"
    """Another code the retention policy relies on is invalid: ICD-9-CM procedure code, accident
    code (MA_TAI_NAN), facility code (MA_CSKCB)."""
    INVALID_ID = "invalid-id"
    """A resource id breaks the FHIR id rule (path separators, control, invisible or look-alike
    characters, too long) or is made of dots only ("." or "..")."""
    CONTROL_CHARACTERS = "control-characters"
    """Text with control characters (other than TAB, LF, CR), unpaired surrogates or bidi
    overrides."""
    DUPLICATE_ID = "duplicate-id"
    """Two different lines carry the same resource type and id for one encounter (FHIR), or two
    different HOSO carry the same MA_LK in one window (QĐ 130)."""
    MALFORMED_XML = "malformed-xml"
    """QĐ 130: not well-formed XML, not UTF-8, or not the structure of its table (wrong root,
    a field with children, tables of one HOSO with different MA_LK)."""
    HOSTILE_XML = "hostile-xml"
    """QĐ 130: a DTD, entity declaration or external reference (refused before anything is
    expanded or fetched), or nesting deeper than the reader's limit."""
    OVERSIZED_XML = "oversized-xml"
    """QĐ 130: a HOSO, an inner table or one text node larger than the reader's limit."""
    INVALID_BASE64 = "invalid-base64"
    """QĐ 130: a FILEHOSO's NOIDUNGFILE is not strict Base64."""
    INVALID_MANIFEST_ROW = "invalid-manifest-row"
    """Paper intake: a scan manifest row with a missing or malformed column (named, not shown),
    or a record number listed twice."""
    MISSING_SCAN = "missing-scan"
    """Paper intake: a manifest row names a file that is not in the scan directory."""
    UNLISTED_SCAN = "unlisted-scan"
    """Paper intake: a file in the scan directory that no manifest row names."""
    UNREADABLE_SCAN = "unreadable-scan"
    """Paper intake: an image or PDF that cannot be decoded (damaged, truncated, not a scan)."""
    ENCRYPTED_SCAN = "encrypted-scan"
    """Paper intake: a password-protected or encrypted PDF (PDF/A forbids encryption)."""
    EMPTY_SCAN = "empty-scan"
    """Paper intake: a PDF or image file with no page."""
    OVERSIZED_SCAN = "oversized-scan"
    """Paper intake: a page larger than the intake's limit (side in points or pixels), or a file
    larger than its byte limit."""
    RETENTION_ENDED = "retention-ended"
    """Paper intake: the record's retention period (its class counted from the discharge year)
    ended before intake. It is not archived: a record past its period belongs in the facility's
    disposition procedure (list, council, minutes); a facility that decides to keep it states the
    longer class in the manifest's ``retention_class`` column. Any source: a changed version of an
    archived record (an amendment) whose class period has ended, which Object Lock could not lock
    (:mod:`archive.pipeline.amendments`)."""
    FACILITY_SIGNATURE_INVALID = "facility-signature-invalid"
    """QĐ 130: the file's ``CHUKYDONVI`` holds an XML signature that does not verify, does not
    cover the whole file, or is by a key not among the configured facility certificates; every
    HOSO of the file is held back."""


class QuarantineScope(StrEnum):
    ENCOUNTER = "encounter"
    """A whole encounter was held back; ``raw_line`` is its Encounter line."""
    LINE = "line"
    """One bad source line; ``encounter_id`` names the encounter it held back, if known."""
    FILE = "file"
    """A whole source file (QĐ 130) could not be read: every HOSO in it is held back;
    ``raw_line`` holds the file's first bytes."""


IdDigest = Callable[[object], "str | None"]
"""Turns a raw id (any JSON value; ``None`` when there was none) into what the index shows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineEntry:
    """One thing the source could not archive. ``repr`` and :meth:`metadata` never show
    ``raw_line`` or the raw ids."""

    reason: QuarantineReason
    scope: QuarantineScope
    source_file: str
    line_number: int
    resource_type: str | None
    resource_id: object = field(repr=False)  # as the line held it (any JSON value); None: none
    encounter_id: str | None = field(repr=False)  # the encounter it held back, if known
    detail: str
    raw_line: bytes = field(repr=False)

    @property
    def raw_sha256(self) -> str:
        return hashlib.sha256(self.raw_line).hexdigest()

    def metadata(self, id_digest: IdDigest) -> dict[str, Any]:
        """Everything but the raw bytes and ids, JSON-ready (for reports and the quarantine
        index); ids as ``id_digest`` makes them."""
        return {
            "reason": self.reason.value,
            "scope": self.scope.value,
            "source_file": self.source_file,
            "line_number": self.line_number,
            "resource_type": self.resource_type,
            "resource_id_digest": id_digest(self.resource_id),
            "encounter_id_digest": id_digest(self.encounter_id),
            "detail": self.detail,
            "raw_sha256": self.raw_sha256,
            "raw_size": len(self.raw_line),
        }
