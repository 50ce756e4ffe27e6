"""One encounter's clinical record: the Encounter and its Conditions, Procedures, drugs and
Observations, drawn from a scenario.

Takes a :class:`Case` (who, when, which scenario, how it ended) and fills in the FHIR resources
the way a Vietnamese hospital system exports them: ICD-10 diagnoses with MOH display names,
ICD-9-CM procedures, QĐ 130 accident and treatment-result codes, vital signs and labs with UCUM
units, and the hospital-course note. The case stays a plain container until it is written, so
that :mod:`infra.sample.bad_records` can spoil it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from archive.sources import fhir
from infra.sample import tables
from infra.sample.dice import Dice
from infra.sample.notes import hospital_course
from infra.sample.people import Person
from infra.sample.tables import Measure, Scenario

_CLASSES: Final = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}
_ROLES: Final = {"AD": "Admission diagnosis", "DD": "Discharge diagnosis"}
_CATEGORIES: Final = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
_DISPOSITIONS: Final = {
    "home": "Home",
    "other-hcf": "Other healthcare facility",
    "exp": "Expired",
    "aadvice": "Left against advice",
}


@dataclass(slots=True, kw_only=True)
class Case:
    """One encounter and its resources, before it is written (and maybe spoiled)."""

    timing: str  # "in", "before", "after", "open"
    scenario: Scenario
    patient: Person
    new_patient: bool  # False: a returning patient, already written
    enc_id: str
    doctor: str  # Practitioner id
    outcome: tuple[str, str] | None  # (KET_QUA_DTRI, discharge disposition); None: not finished
    encounter: dict[str, Any] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    procedures: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[int, bytes] = field(default_factory=dict)  # id(resource) -> replacement line
    dropped: set[int] = field(default_factory=set)  # id(resource) of resources not written


class Clinical:
    def __init__(self, dice: Dice, organizations: list[dict[str, Any]]) -> None:
        self.dice = dice
        self.organizations = organizations

    def outcome(self, fatal: bool) -> tuple[str, str]:
        """(KET_QUA_DTRI treatment result, discharge disposition) of a finished encounter."""
        if fatal:
            return "5", "exp"
        rng = self.dice.rng
        result = rng.choices(("1", "2", "3", "4"), weights=(50, 40, 5, 5))[0]
        if result == "4":
            return result, "other-hcf"
        return result, "aadvice" if rng.random() < 0.02 else "home"

    def fill(self, case: Case, start: datetime, until: datetime) -> None:
        """Draw the case's Conditions, Procedure, MedicationRequests and Observations."""
        rng, scenario = self.dice.rng, case.scenario
        codes = [rng.choice(scenario.principal)]
        codes += rng.sample(scenario.comorbid, rng.randint(0, min(2, len(scenario.comorbid))))
        if scenario.external:
            codes.append(rng.choice(scenario.external))
        case.conditions = [self._condition(case, code, start) for code in codes]
        if scenario.procedures and rng.random() < scenario.procedure_rate:
            at = start + (until - start) * rng.uniform(0.05, 0.5)
            case.procedures = [self._procedure(case, rng.choice(scenario.procedures), at)]
        names = rng.sample(scenario.medications, rng.randint(1, len(scenario.medications)))
        case.medications = [self._medication(case, name, start) for name in names]
        case.observations = self._observations(case, start, until)

    def encounter(
        self, case: Case, klass: str, start: datetime, end: datetime | None
    ) -> dict[str, Any]:
        weights = [f.weight for f in tables.FACILITIES]
        organization = self.dice.rng.choices(self.organizations, weights=weights)[0]
        number, scenario = self.dice.next_seq(), case.scenario
        year, department = start.year % 100, scenario.department
        attending = _coding(fhir.SYS_PARTICIPATION, "ATND", "attender")
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": case.enc_id,
            "extension": [{"url": fhir.EXT_ACCIDENT, "valueCode": scenario.accident}],
            "identifier": [
                {"system": fhir.SYS_HSBA, "value": f"{year:02d}{department}{number:06d}"},
                {"system": fhir.SYS_MA_LK, "value": f"{start:%y%m%d}{number:08d}"},
            ],
            "status": "finished" if end else "in-progress",
            "class": {"system": fhir.SYS_ACT_CODE, "code": klass, "display": _CLASSES[klass]},
            "serviceType": {
                "coding": [_coding(fhir.SYS_DEPARTMENT, department, tables.DEPARTMENTS[department])]
            },
            "subject": _ref("Patient", case.patient.id),
            "participant": [
                {"type": [{"coding": [attending]}], "individual": _ref("Practitioner", case.doctor)}
            ],
            "period": {"start": _iso(start), **({"end": _iso(end)} if end else {})},
            "diagnosis": _diagnoses(case, finished=end is not None),
            "serviceProvider": _ref("Organization", organization["id"]),
        }
        if end is not None and case.outcome is not None:
            result, disposition = case.outcome
            resource["extension"].append({"url": fhir.EXT_TREATMENT_RESULT, "valueCode": result})
            resource["hospitalization"] = {
                "dischargeDisposition": {
                    "coding": [_coding(fhir.SYS_DISCHARGE, disposition, _DISPOSITIONS[disposition])]
                }
            }
        return resource

    def _base(self, resource_type: str) -> dict[str, Any]:
        return {"resourceType": resource_type, "id": self.dice.uuid()}

    def _condition(self, case: Case, code: str, at: datetime) -> dict[str, Any]:
        display = tables.ICD10[code]
        return {
            **self._base("Condition"),
            "clinicalStatus": {
                "coding": [_coding(fhir.SYS_CONDITION_CLINICAL, "active", "Active")]
            },
            "verificationStatus": {
                "coding": [_coding(fhir.SYS_CONDITION_VERIFICATION, "confirmed", "Confirmed")]
            },
            "category": [
                {
                    "coding": [
                        _coding(
                            fhir.SYS_CONDITION_CATEGORY,
                            "encounter-diagnosis",
                            "Encounter Diagnosis",
                        )
                    ]
                }
            ],
            "code": {"coding": [_coding(fhir.SYS_ICD10, code, display)], "text": display},
            **_links(case),
            "recordedDate": _iso(at),
        }

    def _procedure(self, case: Case, code: str, at: datetime) -> dict[str, Any]:
        display = tables.ICD9CM[code]
        return {
            **self._base("Procedure"),
            "status": "completed",
            "code": {"coding": [_coding(fhir.SYS_ICD9CM, code, display)], "text": display},
            **_links(case),
            "performedDateTime": _iso(at),
            "performer": [{"actor": _ref("Practitioner", case.doctor)}],
        }

    def _medication(self, case: Case, name: str, at: datetime) -> dict[str, Any]:
        text, dosage = tables.MEDICATIONS[name]
        return {
            **self._base("MedicationRequest"),
            "status": "completed" if case.timing != "open" else "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": text},
            **_links(case),
            "authoredOn": _iso(at + timedelta(minutes=self.dice.rng.randrange(10, 90))),
            "requester": _ref("Practitioner", case.doctor),
            "dosageInstruction": [{"text": dosage}],
        }

    def _observations(self, case: Case, start: datetime, until: datetime) -> list[dict[str, Any]]:
        age = max(0, start.year - case.patient.birth.year)
        times = [start + timedelta(minutes=15)]
        if until - start > timedelta(days=1):
            times.append(until - timedelta(hours=2))
        result = [
            self._measured(case, "vital-signs", m, at, age) for at in times for m in tables.VITALS
        ]
        labs = {m.loinc: m for m in tables.LABS}
        lab_time = start + timedelta(minutes=self.dice.rng.randrange(30, 120))
        result += [
            self._measured(case, "laboratory", labs[c], lab_time, age) for c in case.scenario.labs
        ]
        result.append(self._narrative(case, start, until))
        return result

    def _measured(
        self, case: Case, category: str, m: Measure, at: datetime, age: int
    ) -> dict[str, Any]:
        rng = self.dice.rng
        if m.loinc == "29463-7" and age < 16:  # body weight: children weigh less
            value = rng.gauss(3.3 + 2.7 * age, 0.6 + 0.3 * age)
        else:
            value = rng.gauss(m.mean, m.sd)
        value = min(max(value, m.low), m.high)
        number: float = round(value) if m.decimals == 0 else round(value, m.decimals)
        return {
            **self._base("Observation"),
            "status": "final",
            "category": [
                {
                    "coding": [
                        _coding(fhir.SYS_OBSERVATION_CATEGORY, category, _CATEGORIES[category])
                    ]
                }
            ],
            "code": {"coding": [_coding(fhir.SYS_LOINC, m.loinc, m.display)], "text": m.text},
            **_links(case),
            "effectiveDateTime": _iso(at),
            "valueQuantity": {
                "value": number,
                "unit": m.unit,
                "system": fhir.SYS_UCUM,
                "code": m.ucum,
            },
        }

    def _narrative(self, case: Case, start: datetime, until: datetime) -> dict[str, Any]:
        return {
            **self._base("Observation"),
            "status": "final",
            "category": [{"coding": [_coding(fhir.SYS_OBSERVATION_CATEGORY, "exam", "Exam")]}],
            "code": {
                "coding": [
                    _coding(fhir.SYS_LOINC, fhir.LOINC_HOSPITAL_COURSE, "Hospital course Narrative")
                ],
                "text": "Tóm tắt quá trình điều trị",
            },
            **_links(case),
            "effectiveDateTime": _iso(until),
            "performer": [_ref("Practitioner", case.doctor)],
            "valueString": hospital_course(
                self.dice.rng,
                scenario=case.scenario,
                principal=case.conditions[0]["code"]["coding"][0],
                surgery=bool(case.procedures),
                outcome=case.outcome,
                start=start,
                until=until,
            ),
        }


def _diagnoses(case: Case, *, finished: bool) -> list[dict[str, Any]]:
    def entry(condition: dict[str, Any], use: str, rank: int) -> dict[str, Any]:
        role = _coding(fhir.SYS_DIAGNOSIS_ROLE, use, _ROLES[use])
        return {
            "condition": _ref("Condition", condition["id"]),
            "use": {"coding": [role]},
            "rank": rank,
        }

    principal, *others = case.conditions
    result = [entry(principal, "AD", 1)]
    if finished:
        result.append(entry(principal, "DD", 1))
    use = "DD" if finished else "AD"
    result += [entry(c, use, rank) for rank, c in enumerate(others, start=2)]
    return result


def _links(case: Case) -> dict[str, Any]:
    return {
        "subject": _ref("Patient", case.patient.id),
        "encounter": _ref("Encounter", case.enc_id),
    }


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
