"""The scan manifest: one CSV row per paper record, checked column by column.

A records department lists what it scanned in a spreadsheet saved as UTF-8 CSV (a BOM is allowed,
as Excel writes one). Each row names its scan file(s) and the facts the archive needs without
reading the paper: record number, patient id, facility, admission and discharge dates, who
converted it, optionally the encounter id, and the retention class or the facts to derive it.
A bad row never raises: :func:`read_manifest` returns it as a :class:`RowProblem` naming the
column, never its value (the values are PHI).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import Final

from archive.core.errors import SourceError
from archive.sources import id_problem
from archive.sources.validation import is_icd9cm_procedure, is_icd10

REQUIRED: Final = (
    "file",
    "record_number",
    "patient_id",
    "facility",
    "admitted",
    "discharged",
    "converted_by",
)
OPTIONAL: Final = (
    "encounter_id",
    "retention_class",
    "encounter_class",
    "icd10",
    "procedures",
    "accident_code",
    "treatment_result",
    "deceased",
)
_MAX_FIELD: Final = 512
_ENCOUNTER_CLASSES: Final = frozenset({"AMB", "IMP", "EMER"})
_TRUE: Final = frozenset({"1", "yes", "true", "có", "x"})
_FALSE: Final = frozenset({"", "0", "no", "false", "không"})
_FORMULA: Final = frozenset("=+-@")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanRow:
    """One paper record as the manifest describes it (values NFC). ``repr`` shows no PHI."""

    line: int
    files: tuple[str, ...]
    record_number: str
    patient_id: str
    facility: str
    admitted_at: datetime
    discharged_at: datetime
    converted_by: str
    encounter_id: str
    retention_class: str | None
    encounter_class: str | None
    icd10_codes: tuple[str, ...]
    procedure_codes: tuple[str, ...]
    accident_code: str | None
    treatment_result: str | None
    deceased: bool

    def __repr__(self) -> str:
        return f"ScanRow(line={self.line}, files={len(self.files)})"

    def as_json(self) -> dict[str, object]:
        """The row as the archive embeds it (dates ISO 8601 with their offset)."""
        return {
            "record_number": self.record_number,
            "patient_id": self.patient_id,
            "facility": self.facility,
            "admitted": self.admitted_at.isoformat(),
            "discharged": self.discharged_at.isoformat(),
            "converted_by": self.converted_by,
            "encounter_id": self.encounter_id,
            "retention_class": self.retention_class,
            "encounter_class": self.encounter_class,
            "icd10": list(self.icd10_codes),
            "procedures": list(self.procedure_codes),
            "accident_code": self.accident_code,
            "treatment_result": self.treatment_result,
            "deceased": self.deceased,
        }


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row that cannot be used: its line, the files it names, and why (column names only)."""

    line: int
    files: tuple[str, ...]
    detail: str
    raw: bytes  # the row as written, for the sealed quarantine entry only


class _BadColumnError(Exception):
    pass


def read_manifest(data: bytes, *, tz: tzinfo) -> Iterator[ScanRow | RowProblem]:
    """Every row in order; a bare date is local midnight in ``tz`` (the hospital's zone).
    :class:`SourceError` if the file as a whole is unusable (not UTF-8, no header, columns
    missing). The caller bounds ``data`` (``max_manifest_mib``) before reading it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError("the manifest is not UTF-8: save it as 'CSV UTF-8'") from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or ()]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SourceError(f"the manifest lacks the column(s) {', '.join(missing)}")
    twice = sorted({c for c in header if c and header.count(c) > 1})
    if twice:  # which of the two would count? Neither guess is safe.
        raise SourceError(f"the manifest names the column(s) {', '.join(twice)} twice")
    reader.fieldnames = header
    seen: set[tuple[str, str]] = set()
    for raw in reader:
        line = reader.line_num
        values = {k: unicodedata.normalize("NFC", (v or "").strip()) for k, v in raw.items() if k}
        files = tuple(f.strip() for f in values.get("file", "").split(";") if f.strip())
        encoded = ",".join(values.get(c, "") for c in header).encode()
        extra = raw.get(None)  # DictReader's key for the cells past the header's
        if extra:
            # An unquoted comma shifted the row: its values would be read under the wrong
            # columns, the last ones dropped.
            whole = ",".join([encoded.decode(), *extra]).encode()
            yield RowProblem(line, files, "the row has more cells than the header", whole)
            continue
        try:
            row = _row(values, line=line, files=files, tz=tz)
        except _BadColumnError as e:
            yield RowProblem(line, files, str(e), encoded)
            continue
        if (row.facility, row.record_number) in seen:
            yield RowProblem(line, files, "record_number: listed twice for this facility", encoded)
            continue
        seen.add((row.facility, row.record_number))
        yield row


def _row(values: dict[str, str], *, line: int, files: tuple[str, ...], tz: tzinfo) -> ScanRow:
    for column in (*REQUIRED, *OPTIONAL):
        value = values.get(column, "")
        if len(value) > _MAX_FIELD or any(unicodedata.category(c) == "Cc" for c in value):
            raise _BadColumnError(f"{column}: too long or holds control characters")
        if column in REQUIRED and not value:
            raise _BadColumnError(f"{column}: empty")
    if any("/" in f or "\\" in f or f.startswith(".") for f in files):
        raise _BadColumnError("file: names a path outside the scan directory")
    if values["converted_by"][0] in _FORMULA:
        # A name never starts so; a spreadsheet that opens a report with it runs a formula.
        raise _BadColumnError("converted_by: starts like a spreadsheet formula (= + - @)")
    record_number, facility = values["record_number"], values["facility"]
    for column in ("record_number", "patient_id", "facility"):
        if id_problem(values[column]) is not None:
            raise _BadColumnError(f"{column}: not an identifier (letters, digits, - and .)")
    admitted, discharged = _moment(values, "admitted", tz), _moment(values, "discharged", tz)
    if discharged < admitted:
        raise _BadColumnError("discharged: before admitted")
    encounter_id = values.get("encounter_id") or f"paper-{facility}-{record_number}"
    if id_problem(encounter_id) is not None:
        raise _BadColumnError("encounter_id: not an identifier (letters, digits, - and .)")
    return ScanRow(
        line=line,
        files=files,
        record_number=record_number,
        patient_id=values["patient_id"],
        facility=facility,
        admitted_at=admitted,
        discharged_at=discharged,
        converted_by=values["converted_by"],
        encounter_id=encounter_id,
        retention_class=values.get("retention_class") or None,
        encounter_class=_encounter_class(values.get("encounter_class", "")),
        icd10_codes=_codes(values, "icd10", is_icd10),
        procedure_codes=_codes(values, "procedures", is_icd9cm_procedure),
        accident_code=_small_code(values, "accident_code"),
        treatment_result=_small_code(values, "treatment_result"),
        deceased=_flag(values.get("deceased", "")),
    )


def _moment(values: dict[str, str], column: str, tz: tzinfo) -> datetime:
    text = values[column]
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadColumnError(f"{column}: not a date (YYYY-MM-DD or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _encounter_class(value: str) -> str | None:
    if value and value.upper() not in _ENCOUNTER_CLASSES:
        raise _BadColumnError("encounter_class: not AMB, IMP or EMER")
    return value.upper() or None


def _codes(values: dict[str, str], column: str, valid: object) -> tuple[str, ...]:
    codes = sorted({c.strip() for c in values.get(column, "").split(";") if c.strip()})
    if callable(valid) and not all(valid(c) for c in codes):
        raise _BadColumnError(f"{column}: a code is malformed")
    return tuple(codes)


def _small_code(values: dict[str, str], column: str) -> str | None:
    value = values.get(column, "")
    if value and not (value.isdigit() and len(value) <= 2):
        raise _BadColumnError(f"{column}: not a one- or two-digit code")
    return value or None


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _BadColumnError("deceased: not yes/no")
