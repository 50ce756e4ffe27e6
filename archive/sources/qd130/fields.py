"""The field rules of QĐ 130/QĐ-BYT (as amended by QĐ 4750 and QĐ 3176), one function per rule.

Each rule takes the text of one element as the hospital wrote it and returns the value the archive
uses, or raises :class:`FieldError` with a PHI-free description and the quarantine reason. Values
stay strings wherever the specification says so: ``SO_CCCD`` and card numbers keep their leading
zeros, codes are never turned into numbers.

* dates ``yyyymmddHHMM`` (12 digits) in the facility's local time; for a birth date ``0000`` marks
  an unknown part (month and day, or the time), never an impossible date;
* card dates ``yyyymmdd`` (8 digits);
* ``;``-separated lists (cards issued during a stay, secondary diagnoses, departments);
* ICD-10 (dotted "J18.9" or the dotless "J189" many HIS send, stored dotted) and ICD-9-CM
  procedure codes ("47.01", "4701");
* code lists: ``MA_LOAI_KCB`` (two characters 01-10), ``KET_QUA_DTRI`` (1-8), ``MA_LOAI_RV``
  (1-5), ``GIOI_TINH`` (1-3), ``MA_TAI_NAN`` (0-8).
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, tzinfo
from typing import Final

from archive.sources.quarantine import QuarantineReason
from archive.sources.validation import ACCIDENT_CODES, icd10_chapter, is_icd9cm_procedure

R = QuarantineReason

ENCOUNTER_TYPES: Final = frozenset(f"{n:02d}" for n in range(1, 11))  # MA_LOAI_KCB, QĐ 824
TREATMENT_RESULTS: Final = frozenset("12345678")  # KET_QUA_DTRI
DISCHARGE_TYPES: Final = frozenset("12345")  # MA_LOAI_RV
SEXES: Final = frozenset("123")  # GIOI_TINH
MAX_SECONDARY_DIAGNOSES: Final = 12  # MA_BENH_KT
ACCIDENT_CODES_SET: Final = ACCIDENT_CODES  # MA_TAI_NAN

_DOTLESS_ICD10: Final = re.compile(r"([A-Z][0-9]{2})([0-9]{1,2})")
_DOTLESS_PROCEDURE: Final = re.compile(r"([0-9]{2})([0-9]{1,2})")
_DIGITS: Final = re.compile(r"[0-9]+")
_DECIMAL: Final = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,6})?")
_FACILITY: Final = re.compile(r"[0-9]{5}")
_CARD: Final = re.compile(r"[A-Z]{2}[0-9]{13}")  # MA_THE_BHYT: 2 letters, 13 digits


class FieldError(ValueError):
    """A field breaks its rule. ``str()`` names the field and the rule, never the value."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def moment(name: str, text: str, tz: tzinfo) -> datetime:
    """``yyyymmddHHMM`` as an aware datetime in ``tz`` (a complete date and time)."""
    parsed = _moment(text, tz)
    if isinstance(parsed, str):
        raise FieldError(R.INVALID_DATETIME, f"{name} {parsed}")
    return parsed


@functools.lru_cache(maxsize=1 << 12)
def _moment(text: str, tz: tzinfo) -> datetime | str:
    """The datetime, or what is wrong with ``text``. Cached: the rows of a HOSO repeat a few
    order times many times, and every date of every row is checked."""
    if len(text) != 12 or not _DIGITS.fullmatch(text):
        return "is not 12 digits yyyymmddHHMM"
    try:
        return datetime(
            int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:]), 0, 0, tz
        )
    except ValueError:
        return "is not a real date and time"


def birth_date(name: str, text: str) -> str:
    """``NGAY_SINH`` as a FHIR date: "1990-05-01", or "1990" when month and day are ``0000``.

    The time part is ignored (``0000`` when unknown); a month without a day or a day without a
    month is refused rather than guessed."""
    if len(text) not in (8, 12) or not _DIGITS.fullmatch(text):
        raise FieldError(R.INVALID_DATETIME, f"{name} is not yyyymmdd[HHMM]")
    year, month_day = text[:4], text[4:8]
    if year == "0000":
        raise FieldError(R.INVALID_DATETIME, f"{name} has no year")
    if month_day == "0000":
        return year
    try:
        return date(int(year), int(month_day[:2]), int(month_day[2:])).isoformat()
    except ValueError:
        raise FieldError(R.INVALID_DATETIME, f"{name} is not a real date") from None


def card_date(name: str, text: str) -> str:
    """A card validity date ``yyyymmdd`` as ISO 8601."""
    if len(text) != 8 or not _DIGITS.fullmatch(text):
        raise FieldError(R.INVALID_DATETIME, f"{name} is not 8 digits yyyymmdd")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        raise FieldError(R.INVALID_DATETIME, f"{name} is not a real date") from None


def split_list(text: str) -> tuple[str, ...]:
    """A ``;``-separated list without blanks (``"A;;B; "`` is ``("A", "B")``)."""
    return tuple(part.strip() for part in text.split(";") if part.strip())


def icd10(name: str, text: str) -> str:
    """An ICD-10 code, dotted; a dotless code (``J189``) has its dot restored."""
    match = _DOTLESS_ICD10.fullmatch(text)
    code = f"{match.group(1)}.{match.group(2)}" if match else text
    if icd10_chapter(code) is None:
        raise FieldError(R.INVALID_ICD10, f"{name} is not an ICD-10 code")
    return code


def icd10_list(name: str, text: str, *, limit: int = MAX_SECONDARY_DIAGNOSES) -> tuple[str, ...]:
    codes = split_list(text)
    if len(codes) > limit:
        raise FieldError(R.INVALID_ICD10, f"{name} lists more than {limit} codes")
    return tuple(icd10(name, c) for c in codes)


def procedure_list(name: str, text: str) -> tuple[str, ...]:
    """ICD-9-CM volume 3 codes, ``;``-separated; dotless ones get their dot."""
    found = []
    for code in split_list(text):
        match = _DOTLESS_PROCEDURE.fullmatch(code)
        dotted = f"{match.group(1)}.{match.group(2)}" if match else code
        if not is_icd9cm_procedure(dotted):
            raise FieldError(R.INVALID_CODE, f"{name} holds a code that is not ICD-9-CM")
        found.append(dotted)
    return tuple(found)


def one_of(name: str, text: str, allowed: frozenset[str]) -> str:
    if text not in allowed:
        raise FieldError(R.INVALID_CODE, f"{name} is not one of {', '.join(sorted(allowed))}")
    return text


def encounter_type(text: str) -> str:
    """``MA_LOAI_KCB``: exactly two characters; a bare "3" (a number-typed export) is refused
    because the code set distinguishes "03" from a truncated "30"."""
    return one_of("MA_LOAI_KCB", text, ENCOUNTER_TYPES)


def accident(text: str) -> str | None:
    return one_of("MA_TAI_NAN", text, ACCIDENT_CODES) if text else None


def facility(name: str, text: str) -> str:
    if not _FACILITY.fullmatch(text):
        raise FieldError(R.INVALID_CODE, f"{name} is not a 5-digit facility code")
    return text


def decimal(name: str, text: str) -> str:
    """A quantity or amount, kept as written (never a float: "1.10" stays "1.10")."""
    if not _DECIMAL.fullmatch(text):
        raise FieldError(R.MALFORMED_RESOURCE, f"{name} is not a decimal number")
    return text


def cards(fields: dict[str, str]) -> tuple[tuple[str, str, str, str], ...]:
    """The insurance cards of a stay: ``MA_THE_BHYT``, ``MA_DKBD``, ``GT_THE_TU``,
    ``GT_THE_DEN`` are parallel ``;`` lists (a new card issued during the stay adds one to
    each). An uninsured visit has none. Card numbers stay strings (leading zeros kept)."""
    numbers = split_list(fields.get("MA_THE_BHYT", ""))
    places = split_list(fields.get("MA_DKBD", ""))
    starts = [card_date("GT_THE_TU", t) for t in split_list(fields.get("GT_THE_TU", ""))]
    ends = [card_date("GT_THE_DEN", t) for t in split_list(fields.get("GT_THE_DEN", ""))]
    if not len(numbers) == len(places) == len(starts) == len(ends):
        raise FieldError(
            R.MALFORMED_RESOURCE,
            "MA_THE_BHYT, MA_DKBD, GT_THE_TU and GT_THE_DEN list different numbers of cards",
        )
    for number in numbers:
        if not _CARD.fullmatch(number):
            raise FieldError(R.INVALID_CODE, "MA_THE_BHYT is not a 15-character card number")
    for place in places:
        facility("MA_DKBD", place)
    return tuple(zip(numbers, places, starts, ends, strict=True))
