"""Planted bad records: each bad encounter spoiled in one way the collector must catch.

Takes a built :class:`~infra.sample.clinical.Case` and a plant (a :class:`BadKind` and a variant
number that cycles through the ways of that kind); spoils the case in place, before it is
written, and returns the :class:`Planted` entry of the answer key. The variants cover what real
exports get wrong: a line cut short by an interrupted write, bytes that are not UTF-8, a missing
Patient, ids with path separators or look-alike characters, control characters escaped or raw.
Orphan lines (malformed lines that belong to no encounter) are made here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from infra.sample.clinical import Case
from infra.sample.export import dumps
from infra.sample.people import Person
from infra.sample.summary import BadKind, Planted

Plant = tuple[BadKind, int]  # the kind and the variant (the how-many-th of that kind)
_INVALID_ICD10: Final = ("J18.9.1", "XYZ", "I5O.9", "j18.9", "U99.9", "E99", "18.9", "J18.999")


def spoil_encounter_id(enc_id: str, plant: Plant | None) -> str:
    """The id the Encounter is written with: some plants spoil the id itself."""
    kind, variant = plant or (None, 0)
    if kind is BadKind.PATH_SEPARATOR_ID and variant % 3 != 1:
        return ("../" if variant % 3 == 0 else "..\\") + enc_id
    if kind is BadKind.CONFUSABLE_ID and variant % 3 == 0:
        return _confusable(enc_id)
    return enc_id


def spoil_patient_id(patient: Person, plant: Plant | None) -> None:
    """Give the (new, unshared) patient of a path-separator plant an id like ``a/<uuid>``."""
    if plant is not None and plant[0] is BadKind.PATH_SEPARATOR_ID and plant[1] % 3 == 1:
        patient.id = patient.resource["id"] = "a/" + patient.id


def spoil(case: Case, kind: BadKind, variant: int) -> Planted:
    spoilers: dict[BadKind, Callable[[Case, int], str | None]] = {
        BadKind.MALFORMED_JSON: _break_json,
        BadKind.UNRESOLVED_REFERENCE: _drop_target,
        BadKind.MISSING_PERIOD_END: _drop_period_end,
        BadKind.INVALID_ICD10: _bad_icd10,
        BadKind.PATH_SEPARATOR_ID: lambda c, v: "Patient" if v % 3 == 1 else None,
        BadKind.CONTROL_CHARACTERS: _control_characters,
        BadKind.CONFUSABLE_ID: _confusable_member,
    }
    bad_line_type = spoilers[kind](case, variant)
    return Planted(kind, case.encounter["id"], bad_line_type)


def _break_json(case: Case, variant: int) -> str:
    if variant % 3 == 1:
        condition = case.conditions[0]
        case.raw[id(condition)] = dumps(condition).replace(b'"code":{', b'"code"{', 1)
        return "Condition"
    observation = case.observations[0] if variant % 3 == 0 else case.observations[-1]
    raw = dumps(observation)
    if variant % 3 == 0:  # cut short, as by an interrupted write
        raw = raw[: raw.index(b'"effectiveDateTime"') + 12]
    else:  # a stray byte sequence that is not UTF-8 inside the note
        cut = raw.index(b'"valueString":"') + 40
        raw = raw[:cut] + b"\xff\xfe" + raw[cut:]
    case.raw[id(observation)] = raw
    return "Observation"


def _drop_target(case: Case, variant: int) -> None:
    target = case.patient.resource if variant % 2 == 0 else case.conditions[0]
    case.dropped.add(id(target))


def _drop_period_end(case: Case, variant: int) -> None:
    del case.encounter["period"]["end"]


def _bad_icd10(case: Case, variant: int) -> str:
    case.conditions[0]["code"]["coding"][0]["code"] = _INVALID_ICD10[variant % len(_INVALID_ICD10)]
    return "Condition"


def _control_characters(case: Case, variant: int) -> str | None:
    note = case.observations[-1]
    if variant % 4 == 0:
        name = case.patient.resource["name"][0]
        name["text"] = name["text"].replace(" ", "\x07 ", 1)
        return "Patient"
    if variant % 4 == 2:
        hsba = case.encounter["identifier"][0]
        hsba["value"] = "\u202e" + hsba["value"]  # right-to-left override
        return None
    marker = "\x1b[2J" if variant % 4 == 1 else "\x07"
    text = note["valueString"]
    note["valueString"] = text[: len(text) // 2] + marker + text[len(text) // 2 :]
    if variant % 4 == 3:  # unescaped, as a sloppy exporter writes it
        case.raw[id(note)] = dumps(note).replace(b"\\u0007", b"\x07")
    return "Observation"


def _confusable_member(case: Case, variant: int) -> str | None:
    if variant % 3 == 0:
        return None  # the Encounter id itself was made confusable when the case was built
    if variant % 3 == 2:
        case.observations[0]["id"] = _confusable(case.observations[0]["id"])
        return "Observation"
    condition = case.conditions[0]
    old, new = condition["id"], condition["id"][:8] + "\u200b" + condition["id"][8:]
    condition["id"] = new
    for diagnosis in case.encounter["diagnosis"]:
        if diagnosis["condition"]["reference"] == f"Condition/{old}":
            diagnosis["condition"]["reference"] = f"Condition/{new}"
    return "Condition"


def _confusable(value: str) -> str:
    if "a" in value:
        return value.replace("a", "\u0430", 1)  # Cyrillic a
    if "e" in value:
        return value.replace("e", "\u0435", 1)  # Cyrillic ie
    return "\u0430" + value


def orphan(variant: int, fresh_id: str) -> tuple[str, bytes]:
    """A malformed line no encounter can be tied to: (resource type, raw line)."""
    lines = (
        ("Encounter", f'{{"resourceType":"Encounter","id":"{fresh_id}","status":"finished","pe'),
        ("Observation", "\udcff\udcfe\x00 not json"),
        ("Condition", "[1,2,3]"),
        ("Patient", '{"resourceType":"Patient","active":true,"name":[{"text":"Nguyễn Văn'),
        ("Observation", '{"resourceType":"Observation","status":"final",'),
    )
    kind, text = lines[variant % len(lines)]
    return kind, text.encode("utf-8", "surrogateescape")
