"""The sample's word lists, code lists and clinical scenarios, read once from ``data/*.toml``.

The tables are data, not code: long lists of Vietnamese names, places, ICD display names, drugs
and note sentences that someone who knows the clinical content should be able to review and edit
without reading the generator. TOML keeps them commented and diffable; this module turns them
into typed, immutable values at import. Every string is normalised to NFC here, so generated
text is NFC whatever the editor wrote. Order matters: the generator draws from these sequences,
so reordering a list (or turning an integer into a float) changes the sample for every seed.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, NamedTuple


class Weighted(NamedTuple):
    value: str
    weight: float


class Place(NamedTuple):
    """A province (by CCCD code) or a facility (by MA_CSKCB), drawn by weight."""

    code: str
    name: str
    weight: float


class Medication(NamedTuple):
    text: str
    dosage: str  # the dosage instruction, as written on the order


@dataclass(frozen=True, slots=True, kw_only=True)
class Measure:
    """An observation the generator draws from a normal distribution."""

    loinc: str
    display: str  # LOINC display (English, as the code system gives it)
    text: str  # Vietnamese label for the PDF
    unit: str
    ucum: str
    mean: float
    sd: float
    decimals: int
    low: float  # values are clamped to [low, high]
    high: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A kind of encounter: department, codes, drugs and the words of its notes."""

    key: str
    weight: float
    department: str
    classes: tuple[str, ...]  # v3-ActCode, drawn uniformly (repeat a code to weight it)
    principal: tuple[str, ...]  # ICD-10, one drawn
    comorbid: tuple[str, ...] = ()  # ICD-10, 0-2 drawn
    procedures: tuple[str, ...] = ()  # ICD-9-CM, one drawn with probability procedure_rate
    procedure_rate: float = 0.0
    medications: tuple[str, ...] = ("paracetamol",)
    labs: tuple[str, ...] = ("718-7", "2345-7")
    complaint: tuple[str, ...] = ("mệt mỏi",)
    sex: str | None = None
    ages: tuple[int, int] = (18, 90)
    accident: str = "0"  # QĐ130 MA_TAI_NAN
    external: tuple[str, ...] = ()  # external-cause ICD-10 (V01-Y98), one drawn
    fatal_rate: float = 0.0


def _load(name: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "data" / name).read_text(encoding="utf-8")
    table: dict[str, Any] = _nfc(tomllib.loads(text))
    return table


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {_nfc(k): _nfc(v) for k, v in value.items()}
    return value


def _strings(values: list[str]) -> tuple[str, ...]:
    return tuple(values)


def _places(table: dict[str, dict[str, Any]]) -> tuple[Place, ...]:
    return tuple(Place(code, place["name"], place["weight"]) for code, place in table.items())


def _scenario(table: dict[str, Any]) -> Scenario:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return Scenario(**fields)


_PEOPLE: Final = _load("people.toml")
_HOSPITAL: Final = _load("hospital.toml")
_NOTES: Final = _load("notes.toml")

# --- people ---------------------------------------------------------------------------------------

FAMILY_NAMES: Final = tuple(Weighted(k, v) for k, v in _PEOPLE["family_names"].items())
MIDDLE_MALE: Final = _strings(_PEOPLE["middle_male"])
MIDDLE_FEMALE: Final = _strings(_PEOPLE["middle_female"])
GIVEN_MALE: Final = _strings(_PEOPLE["given_male"])
GIVEN_FEMALE: Final = _strings(_PEOPLE["given_female"])
PRACTITIONER_TITLES: Final = _strings(_PEOPLE["practitioner_titles"])
PROVINCES: Final = _places(_PEOPLE["provinces"])
DISTRICTS: Final = tuple((k, _strings(wards)) for k, wards in _PEOPLE["districts"].items())
STREETS: Final = _strings(_PEOPLE["streets"])
HAMLETS: Final = _strings(_PEOPLE["hamlets"])
BHYT_OBJECTS: Final = tuple(Weighted(k, v) for k, v in _PEOPLE["bhyt_objects"].items())

# --- the hospital and its codes -------------------------------------------------------------------

FACILITIES: Final = _places(_HOSPITAL["facilities"])
DEPARTMENTS: Final[dict[str, str]] = dict(_HOSPITAL["departments"])
ICD10: Final[dict[str, str]] = dict(_HOSPITAL["icd10"])
ICD9CM: Final[dict[str, str]] = dict(_HOSPITAL["icd9cm"])
MEDICATIONS: Final = {
    k: Medication(m["text"], m["dosage"]) for k, m in _HOSPITAL["medications"].items()
}
VITALS: Final = tuple(Measure(**m) for m in _HOSPITAL["vitals"])
LABS: Final = tuple(Measure(**m) for m in _HOSPITAL["labs"])

# --- scenarios and notes --------------------------------------------------------------------------

SCENARIOS: Final = tuple(_scenario(s) for s in _load("scenarios.toml")["scenario"])
NOTE_OPENINGS: Final = _strings(_NOTES["openings"])
NOTE_HISTORY: Final = _strings(_NOTES["history"])
NOTE_EXAM: Final = _strings(_NOTES["exam"])
NOTE_PROGRESS: Final = _strings(_NOTES["progress"])
NOTE_DISCHARGE: Final = _strings(_NOTES["discharge"])
NOTE_DEATH: Final[str] = _NOTES["death"]
NOTE_TRANSFER: Final[str] = _NOTES["transfer"]
