"""A deterministic, realistic sample FHIR Bulk Data export of a Vietnamese provincial hospital.

``write_sample_export`` writes one NDJSON file per resource type plus ``manifest.json`` (the
Bulk Data status response: ``transactionTime``, ``request``, ``output``) the way a FHIR server's
``$export`` does. All data is fictitious. The same arguments always give the same bytes.

Encounters: ~82 % finish on ``day`` (local time), ~6 % the day before, ~6 % early the day after
(before the export ran), ~6 % are still ``in-progress``; the first of each sits exactly on a window
boundary. A share of the in-window encounters is made bad on purpose, one kind each (see
:class:`BadKind`), plus a few malformed lines that belong to no encounter; the returned
:class:`SampleSummary` is the answer a collector must give.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from archive.sources import DEFAULT_TZ, QuarantineReason, fhir, zone
from infra.sample import data as data

__all__ = [
    "EXPECTED_REASON",
    "MANIFEST_NAME",
    "BadKind",
    "Planted",
    "SampleSummary",
    "write_sample_export",
]

MANIFEST_NAME: Final = "manifest.json"
BASE_URL: Final = "https://his.bvdk-hoabinh.example/fhir"
FILE_ORDER: Final = fhir.BUNDLE_ORDER  # one NDJSON file per type, listed in this order
EXPORT_HOUR: Final = 3  # the export runs at 03:00 local the next morning


class BadKind(StrEnum):
    """The kinds of bad records planted, one per bad encounter."""

    MALFORMED_JSON = "malformed-json"  # a line of the encounter is cut, broken or not UTF-8
    UNRESOLVED_REFERENCE = "unresolved-reference"  # its Patient or a diagnosis Condition missing
    MISSING_PERIOD_END = "missing-period-end"  # finished without period.end
    INVALID_ICD10 = "invalid-icd10"  # a Condition with a code that is not ICD-10
    PATH_SEPARATOR_ID = "path-separator-id"  # "../x", "..\\x", "a/x" as an id
    CONTROL_CHARACTERS = "control-characters"  # BEL, ESC, bidi override, raw control byte
    CONFUSABLE_ID = "confusable-id"  # Cyrillic look-alike or zero-width character in an id


EXPECTED_REASON: Final = {
    BadKind.MALFORMED_JSON: QuarantineReason.MALFORMED_JSON,
    BadKind.UNRESOLVED_REFERENCE: QuarantineReason.UNRESOLVED_REFERENCE,
    BadKind.MISSING_PERIOD_END: QuarantineReason.MISSING_PERIOD_END,
    BadKind.INVALID_ICD10: QuarantineReason.INVALID_ICD10,
    BadKind.PATH_SEPARATOR_ID: QuarantineReason.INVALID_ID,
    BadKind.CONTROL_CHARACTERS: QuarantineReason.CONTROL_CHARACTERS,
    BadKind.CONFUSABLE_ID: QuarantineReason.INVALID_ID,
}
_WEIGHTS: Final = [s.weight for s in data.SCENARIOS]
_INVALID_ICD10: Final = ("J18.9.1", "XYZ", "I5O.9", "j18.9", "U99.9", "E99", "18.9", "J18.999")


@dataclass(frozen=True, slots=True)
class Planted:
    """One bad encounter: its (possibly bad) id and the type of its separate bad line, if any
    (``None`` when the Encounter line itself is the bad one, or nothing is bad but a reference)."""

    kind: BadKind
    encounter_id: str
    bad_line_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleSummary:
    """What was written, and what a correct collector must return for ``Window.for_day(day)``."""

    out_dir: Path
    day: date
    tz: str
    seed: int
    encounters: int  # Encounter resources written (every status, good and bad)
    in_window: tuple[str, ...]  # good finished encounters ending on `day`: the bundles, sorted
    outside_window: int  # good finished encounters ending the day before or after
    not_finished: int
    planted: tuple[Planted, ...]
    orphan_lines: int  # malformed lines that belong to no known encounter
    files: tuple[str, ...]
    size_bytes: int  # all NDJSON files together

    def bad_counts(self) -> dict[BadKind, int]:
        counts = Counter(p.kind for p in self.planted)
        return {kind: counts[kind] for kind in BadKind}

    @property
    def expected_line_entries(self) -> int:
        """LINE quarantine entries: one per separate bad line, one per orphan line."""
        return sum(p.bad_line_type is not None for p in self.planted) + self.orphan_lines


def write_sample_export(
    out_dir: Path,
    *,
    encounters: int,
    seed: int,
    day: date,
    bad_share: float = 0.05,
    tz: str = DEFAULT_TZ,
) -> SampleSummary:
    """Write a sample export of ``encounters`` encounters into ``out_dir`` (created if needed).

    ``bad_share`` is the share of all encounters made bad, spread round-robin over every
    :class:`BadKind` (at least one of each when it is above zero and there are enough).
    """
    if encounters < 0 or not 0.0 <= bad_share <= 1.0:
        raise ValueError("encounters must be >= 0 and bad_share within [0, 1]")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - reproducible fake data, not secrets
    generator = _Generator(rng, day=day, tz=zone(tz), encounters=encounters)
    generator.plan(bad_share)
    with _Writer(out_dir) as writer:
        generator.write(writer)
    _write_manifest(out_dir, writer, generator.taken_at, day, seed)
    return generator.summary(out_dir=out_dir, seed=seed, tz=tz, writer=writer)


# --- writing --------------------------------------------------------------------------------------


class _Writer:
    """One NDJSON file per type, opened on first use; counts lines for the manifest."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.handles: dict[str, IO[bytes]] = {}
        self.counts: Counter[str] = Counter()
        self.size = 0

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self.handles.values():
            handle.close()

    def resource(self, resource: dict[str, Any]) -> None:
        self.line(resource["resourceType"], _dumps(resource))

    def line(self, resource_type: str, raw: bytes) -> None:
        handle = self.handles.get(resource_type)
        if handle is None:
            path = self.out_dir / f"{resource_type}.ndjson"
            handle = self.handles[resource_type] = path.open("wb")
        handle.write(raw + b"\n")
        self.counts[resource_type] += 1
        self.size += len(raw) + 1

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{t}.ndjson" for t in FILE_ORDER if self.counts[t])


def _dumps(resource: dict[str, Any]) -> bytes:
    # As a server writes it: natural key order, compact, UTF-8.
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _write_manifest(
    out_dir: Path, writer: _Writer, taken_at: datetime, day: date, seed: int
) -> None:
    job_rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - reproducible fake data
    job = uuid.UUID(int=job_rng.getrandbits(128), version=4)
    types = [t for t in FILE_ORDER if writer.counts[t]]
    since = datetime.combine(day - timedelta(days=1), time(0), tzinfo=taken_at.tzinfo)
    manifest = {
        "transactionTime": taken_at.isoformat(timespec="seconds"),
        "request": f"{BASE_URL}/$export?_type={','.join(types)}"
        f"&_since={since.isoformat(timespec='seconds').replace('+', '%2B')}",
        "requiresAccessToken": True,
        "output": [
            {"type": t, "url": f"{BASE_URL}/bulkfiles/{job}/{t}.ndjson", "count": writer.counts[t]}
            for t in types
        ],
        "error": [],
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out_dir / MANIFEST_NAME).write_bytes(text.encode("utf-8"))


# --- generating -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    id: str
    sex: str
    birth: date
    resource: dict[str, Any]


@dataclass(slots=True, kw_only=True)
class _Case:
    """One encounter and its resources, before it is written (and maybe spoiled)."""

    timing: str  # "in", "before", "after", "open"
    scenario: data.Scenario
    patient: _Person
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


class _Generator:
    def __init__(self, rng: random.Random, *, day: date, tz: tzinfo, encounters: int) -> None:
        self.rng, self.day, self.tz, self.n = rng, day, tz, encounters
        self.taken_at = datetime.combine(day + timedelta(days=1), time(EXPORT_HOUR), tzinfo=tz)
        self.timings: list[str] = []
        self.plants: dict[int, tuple[BadKind, int]] = {}
        self.orphans: dict[int, list[int]] = {}
        self.boundary: dict[int, datetime] = {}
        self.planted: list[Planted] = []
        self.good_in: list[str] = []
        self.outside = self.open = 0
        self.pool: list[_Person] = []  # patients who may come back
        self.seq = 0
        self.organizations = [self._organization(*f[:2]) for f in data.FACILITIES]
        self.practitioners = [self._practitioner(i) for i in range(max(12, encounters // 40))]

    # --- the plan: timings, plants, boundaries ---------------------------------------------------

    def plan(self, bad_share: float) -> None:
        rng = self.rng
        for _ in range(self.n):
            r = rng.random()
            self.timings.append(
                "open" if r < 0.06 else "before" if r < 0.12 else "after" if r < 0.18 else "in"
            )
        inside = [i for i, t in enumerate(self.timings) if t == "in"]
        kinds = list(BadKind)
        wanted = round(self.n * bad_share)
        if bad_share > 0:
            wanted = max(wanted, len(kinds))
        chosen = rng.sample(inside, min(wanted, len(inside)))
        self.plants = {i: (kinds[j % len(kinds)], j // len(kinds)) for j, i in enumerate(chosen)}
        for j in range(max(1, len(chosen) // len(kinds)) if chosen else 0):
            self.orphans.setdefault(rng.randrange(self.n), []).append(j)
        for timing, moment in self._boundaries().items():
            first = next(
                (i for i, t in enumerate(self.timings) if t == timing and i not in self.plants),
                None,
            )
            if first is not None:
                self.boundary[first] = moment

    def _boundaries(self) -> dict[str, datetime]:
        start = datetime.combine(self.day, time(0), tzinfo=self.tz)
        return {
            "in": start,
            "before": start - timedelta(seconds=1),
            "after": start + timedelta(days=1),
        }

    # --- writing all cases ------------------------------------------------------------------------

    def write(self, writer: _Writer) -> None:
        for resource in [*self.organizations, *self.practitioners]:
            writer.resource(resource)
        for index in range(self.n):
            for variant in self.orphans.get(index, []):
                writer.line(*_orphan(variant, self._uuid()))
            case = self._case(index)
            plant = self.plants.get(index)
            if plant is not None:
                self.planted.append(self._spoil(case, *plant))
            elif case.timing == "in":
                self.good_in.append(case.encounter["id"])
            elif case.timing == "open":
                self.open += 1
            else:
                self.outside += 1
            self._emit(case, writer)

    def _emit(self, case: _Case, writer: _Writer) -> None:
        resources = [case.patient.resource] if case.new_patient else []
        resources += [case.encounter, *case.conditions, *case.procedures]
        resources += [*case.medications, *case.observations]
        for resource in resources:
            if id(resource) in case.dropped:
                continue
            raw = case.raw.get(id(resource))
            if raw is not None:
                writer.line(resource["resourceType"], raw)
            else:
                writer.resource(resource)

    def summary(self, *, out_dir: Path, seed: int, tz: str, writer: _Writer) -> SampleSummary:
        return SampleSummary(
            out_dir=out_dir,
            day=self.day,
            tz=tz,
            seed=seed,
            encounters=self.n,
            in_window=tuple(sorted(self.good_in)),
            outside_window=self.outside,
            not_finished=self.open,
            planted=tuple(self.planted),
            orphan_lines=sum(len(v) for v in self.orphans.values()),
            files=writer.files,
            size_bytes=writer.size,
        )

    # --- one case ---------------------------------------------------------------------------------

    def _case(self, index: int) -> _Case:
        rng, timing, plant = self.rng, self.timings[index], self.plants.get(index)
        scenario = rng.choices(data.SCENARIOS, weights=_WEIGHTS)[0]
        fatal = timing != "open" and rng.random() < scenario.fatal_rate
        end = None if timing == "open" else self.boundary.get(index) or self._end(timing)
        klass = rng.choice(scenario.classes)
        start = self._start(klass, end)
        patient, new = self._patient_for(scenario, start, shareable=not fatal and plant is None)
        if plant is not None and plant[0] is BadKind.PATH_SEPARATOR_ID and plant[1] % 3 == 1:
            patient.id = patient.resource["id"] = "a/" + patient.id
        case = _Case(
            timing=timing,
            scenario=scenario,
            patient=patient,
            new_patient=new,
            enc_id=self._encounter_id(plant),
            doctor=rng.choice(self.practitioners)["id"],
            outcome=None if end is None else self._outcome(fatal),
        )
        self._clinical(case, start, end or self.taken_at - timedelta(minutes=30))
        case.encounter = self._encounter(case, klass, start, end)
        if fatal and end is not None:
            patient.resource["deceasedDateTime"] = _iso(end)
        return case

    def _encounter_id(self, plant: tuple[BadKind, int] | None) -> str:
        enc_id = self._uuid()
        kind, variant = plant or (None, 0)
        if kind is BadKind.PATH_SEPARATOR_ID and variant % 3 != 1:
            return ("../" if variant % 3 == 0 else "..\\") + enc_id
        if kind is BadKind.CONFUSABLE_ID and variant % 3 == 0:
            return _confusable(enc_id)
        return enc_id

    def _end(self, timing: str) -> datetime:
        start = datetime.combine(self.day, time(0), tzinfo=self.tz)
        if timing == "before":
            start -= timedelta(days=1)
        span = 86400 if timing != "after" else EXPORT_HOUR * 3600
        if timing == "after":
            start += timedelta(days=1)
        return start + timedelta(seconds=self.rng.randrange(span))

    def _start(self, klass: str, end: datetime | None) -> datetime:
        rng = self.rng
        if end is None:
            return self.taken_at - timedelta(minutes=rng.randrange(60, 10 * 24 * 60))
        minutes = {
            "AMB": rng.randrange(20, 300),
            "EMER": rng.randrange(120, 36 * 60),
            "IMP": rng.randrange(24 * 60, 14 * 24 * 60),
        }[klass]
        return end - timedelta(minutes=minutes)

    # --- people -----------------------------------------------------------------------------------

    def _patient_for(
        self, scenario: data.Scenario, at: datetime, *, shareable: bool
    ) -> tuple[_Person, bool]:
        rng = self.rng
        if shareable and self.pool and scenario.sex is None and rng.random() < 0.1:
            person = rng.choice(self.pool)
            age = at.year - person.birth.year
            if scenario.ages[0] <= age <= scenario.ages[1]:
                return person, False
        person = self._new_patient(scenario, at)
        if shareable:
            self.pool.append(person)
        return person, True

    def _new_patient(self, scenario: data.Scenario, at: datetime) -> _Person:
        rng = self.rng
        sex = scenario.sex or rng.choice(("male", "female"))
        age = rng.randint(*scenario.ages)
        birth = date(at.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        if birth >= at.date():
            birth = at.date() - timedelta(days=rng.randrange(1, 300))
        family, middle, given = self._name(sex)
        code, province, _ = rng.choices(data.PROVINCES, weights=[p[2] for p in data.PROVINCES])[0]
        self.seq += 1
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": self._uuid(),
            "identifier": [
                {"system": fhir.SYS_CCCD, "value": self._cccd(code, sex, birth)},
                {"system": fhir.SYS_BHYT, "value": self._bhyt(code, age)},
                {"system": fhir.SYS_PATIENT, "value": f"BN{birth.year % 100:02d}{self.seq:07d}"},
            ],
            "active": True,
            "name": [
                {
                    "use": "official",
                    "text": f"{family} {middle} {given}",
                    "family": family,
                    "given": [middle, given],
                }
            ],
            "telecom": [{"system": "phone", "value": self._phone(), "use": "mobile"}],
            "gender": sex,
            "birthDate": birth.isoformat(),
            "address": [self._address(province)],
        }
        return _Person(resource["id"], sex, birth, resource)

    def _name(self, sex: str) -> tuple[str, str, str]:
        rng = self.rng
        family = rng.choices(data.FAMILY_NAMES, weights=[f[1] for f in data.FAMILY_NAMES])[0][0]
        male = sex == "male"
        middle = rng.choice(data.MIDDLE_MALE if male else data.MIDDLE_FEMALE)
        given = rng.choice(data.GIVEN_MALE if male else data.GIVEN_FEMALE)
        return family, middle, given

    def _cccd(self, province: str, sex: str, birth: date) -> str:
        century = 0 if birth.year < 2000 else 2
        marker = century + (0 if sex == "male" else 1)
        return f"{province}{marker}{birth.year % 100:02d}{self.rng.randrange(10**6):06d}"

    def _bhyt(self, province: str, age: int) -> str:
        rng = self.rng
        if age < 6:
            kind = "TE"
        elif age < 18:
            kind = "HS"
        else:
            kind = rng.choices(data.BHYT_OBJECTS, weights=[o[1] for o in data.BHYT_OBJECTS])[0][0]
        level = 1 if kind == "TE" else rng.choice((2, 3, 4, 4, 4, 5))
        return f"{kind}{level}{province[-2:]}{rng.randrange(10**10):010d}"

    def _phone(self) -> str:
        return f"0{self.rng.choice(('9', '8', '3', '7'))}{self.rng.randrange(10**8):08d}"

    def _address(self, province: str) -> dict[str, Any]:
        rng = self.rng
        district, wards = rng.choice(data.DISTRICTS)
        ward = rng.choice(wards)
        if province != "tỉnh Hòa Bình":
            district, ward = "", ""
        if ward.startswith("phường") or not ward:
            line = f"Số {rng.randrange(1, 300)}, đường {rng.choice(data.STREETS)}"
        else:
            line = rng.choice(data.HAMLETS)
        parts = [p for p in (line, ward, district, province) if p]
        return {
            "use": "home",
            "text": ", ".join(parts),
            "line": [line],
            "state": province,
            "country": "VN",
        }

    def _organization(self, code: str, name: str) -> dict[str, Any]:
        return {
            "resourceType": "Organization",
            "id": self._uuid(),
            "identifier": [{"system": fhir.SYS_FACILITY, "value": code}],
            "active": True,
            "name": name,
            "address": [{"text": "tỉnh Hòa Bình", "country": "VN"}],
        }

    def _practitioner(self, index: int) -> dict[str, Any]:
        sex = self.rng.choice(("male", "female"))
        family, middle, given = self._name(sex)
        return {
            "resourceType": "Practitioner",
            "id": self._uuid(),
            "identifier": [{"system": fhir.SYS_PRACTITIONER, "value": f"{index + 1:06d}/HB-CCHN"}],
            "name": [
                {
                    "text": f"{family} {middle} {given}",
                    "family": family,
                    "given": [middle, given],
                    "prefix": [self.rng.choice(data.PRACTITIONER_TITLES)],
                }
            ],
            "gender": sex,
        }

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- clinical content -------------------------------------------------------------------------

    def _encounter(
        self, case: _Case, klass: str, start: datetime, end: datetime | None
    ) -> dict[str, Any]:
        rng, scenario = self.rng, case.scenario
        organization = rng.choices(self.organizations, weights=[f[2] for f in data.FACILITIES])[0]
        self.seq += 1
        year, department = start.year % 100, scenario.department
        attending = _coding(fhir.SYS_PARTICIPATION, "ATND", "attender")
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": case.enc_id,
            "extension": [{"url": fhir.EXT_ACCIDENT, "valueCode": scenario.accident}],
            "identifier": [
                {"system": fhir.SYS_HSBA, "value": f"{year:02d}{department}{self.seq:06d}"},
                {"system": fhir.SYS_MA_LK, "value": f"{start:%y%m%d}{self.seq:08d}"},
            ],
            "status": "finished" if end else "in-progress",
            "class": {"system": fhir.SYS_ACT_CODE, "code": klass, "display": _CLASSES[klass]},
            "serviceType": {
                "coding": [_coding(fhir.SYS_DEPARTMENT, department, data.DEPARTMENTS[department])]
            },
            "subject": _ref("Patient", case.patient.id),
            "participant": [
                {"type": [{"coding": [attending]}], "individual": _ref("Practitioner", case.doctor)}
            ],
            "period": {"start": _iso(start), **({"end": _iso(end)} if end else {})},
            "diagnosis": self._diagnoses(case, finished=end is not None),
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

    def _diagnoses(self, case: _Case, *, finished: bool) -> list[dict[str, Any]]:
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

    def _outcome(self, fatal: bool) -> tuple[str, str]:
        if fatal:
            return "5", "exp"
        result = self.rng.choices(("1", "2", "3", "4"), weights=(50, 40, 5, 5))[0]
        if result == "4":
            return result, "other-hcf"
        return result, "aadvice" if self.rng.random() < 0.02 else "home"

    def _clinical(self, case: _Case, start: datetime, until: datetime) -> None:
        rng, scenario = self.rng, case.scenario
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

    def _base(self, case: _Case, resource_type: str) -> dict[str, Any]:
        return {"resourceType": resource_type, "id": self._uuid()}

    def _links(self, case: _Case) -> dict[str, Any]:
        return {
            "subject": _ref("Patient", case.patient.id),
            "encounter": _ref("Encounter", case.enc_id),
        }

    def _condition(self, case: _Case, code: str, at: datetime) -> dict[str, Any]:
        display = data.ICD10[code]
        return {
            **self._base(case, "Condition"),
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
            **self._links(case),
            "recordedDate": _iso(at),
        }

    def _procedure(self, case: _Case, code: str, at: datetime) -> dict[str, Any]:
        display = data.ICD9CM[code]
        return {
            **self._base(case, "Procedure"),
            "status": "completed",
            "code": {"coding": [_coding(fhir.SYS_ICD9CM, code, display)], "text": display},
            **self._links(case),
            "performedDateTime": _iso(at),
            "performer": [{"actor": _ref("Practitioner", case.doctor)}],
        }

    def _medication(self, case: _Case, name: str, at: datetime) -> dict[str, Any]:
        text, dosage = data.MEDICATIONS[name]
        return {
            **self._base(case, "MedicationRequest"),
            "status": "completed" if case.timing != "open" else "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": text},
            **self._links(case),
            "authoredOn": _iso(at + timedelta(minutes=self.rng.randrange(10, 90))),
            "requester": _ref("Practitioner", case.doctor),
            "dosageInstruction": [{"text": dosage}],
        }

    def _observations(self, case: _Case, start: datetime, until: datetime) -> list[dict[str, Any]]:
        age = max(0, start.year - case.patient.birth.year)
        times = [start + timedelta(minutes=15)]
        if until - start > timedelta(days=1):
            times.append(until - timedelta(hours=2))
        result = [
            self._measured(case, "vital-signs", m, at, age) for at in times for m in data.VITALS
        ]
        labs = {m.loinc: m for m in data.LABS}
        lab_time = start + timedelta(minutes=self.rng.randrange(30, 120))
        result += [
            self._measured(case, "laboratory", labs[c], lab_time, age) for c in case.scenario.labs
        ]
        result.append(self._narrative(case, start, until))
        return result

    def _measured(
        self, case: _Case, category: str, m: data.Measure, at: datetime, age: int
    ) -> dict[str, Any]:
        rng = self.rng
        if m.loinc == "29463-7" and age < 16:
            value = rng.gauss(3.3 + 2.7 * age, 0.6 + 0.3 * age)
        else:
            value = rng.gauss(m.mean, m.sd)
        value = min(max(value, m.low), m.high)
        number: float = round(value) if m.decimals == 0 else round(value, m.decimals)
        return {
            **self._base(case, "Observation"),
            "status": "final",
            "category": [
                {
                    "coding": [
                        _coding(fhir.SYS_OBSERVATION_CATEGORY, category, _CATEGORIES[category])
                    ]
                }
            ],
            "code": {"coding": [_coding(fhir.SYS_LOINC, m.loinc, m.display)], "text": m.text},
            **self._links(case),
            "effectiveDateTime": _iso(at),
            "valueQuantity": {
                "value": number,
                "unit": m.unit,
                "system": fhir.SYS_UCUM,
                "code": m.ucum,
            },
        }

    def _narrative(self, case: _Case, start: datetime, until: datetime) -> dict[str, Any]:
        return {
            **self._base(case, "Observation"),
            "status": "final",
            "category": [{"coding": [_coding(fhir.SYS_OBSERVATION_CATEGORY, "exam", "Exam")]}],
            "code": {
                "coding": [
                    _coding(fhir.SYS_LOINC, fhir.LOINC_HOSPITAL_COURSE, "Hospital course Narrative")
                ],
                "text": "Tóm tắt quá trình điều trị",
            },
            **self._links(case),
            "effectiveDateTime": _iso(until),
            "performer": [_ref("Practitioner", case.doctor)],
            "valueString": self._note(case, start, until),
        }

    def _note(self, case: _Case, start: datetime, until: datetime) -> str:
        rng, scenario = self.rng, case.scenario
        principal = case.conditions[0]["code"]["coding"][0]
        target = rng.randint(2600, 8800)  # about 1 to 3 printed pages
        parts = [
            rng.choice(data.NOTE_OPENINGS).format(
                complaint=rng.choice(scenario.complaint), days=rng.randint(1, 7)
            ),
            rng.choice(data.NOTE_HISTORY),
            rng.choice(data.NOTE_EXAM).format(**self._vitals_words()),
            f"Chẩn đoán: {principal['display']} ({principal['code']}).",
            "Diễn biến điều trị:",
        ]
        pool = [s for s in data.NOTE_PROGRESS if case.procedures or "mổ" not in s]
        entries: list[str] = []
        size = sum(len(p) + 1 for p in parts)
        while size < target:
            sentences = rng.sample(pool, rng.randint(4, 6))
            if any("{" in s for s in sentences):
                words = self._vitals_words()
                sentences = [s.format(**words) for s in sentences]
            entries.append(" ".join(sentences))
            size += len(entries[-1]) + 20
        step = (until - start) / max(1, len(entries) - 1)
        parts += [f"- {start + step * i:%d/%m/%Y %H:%M}: {e}" for i, e in enumerate(entries)]
        parts.append(self._note_ending(case, until))
        return "\n".join(parts)

    def _note_ending(self, case: _Case, until: datetime) -> str:
        if case.outcome is None:
            return "Hiện bệnh nhân đang tiếp tục điều trị tại khoa."
        if case.outcome[1] == "exp":
            return data.NOTE_DEATH.format(time=f"{until:%H giờ %M} ngày {until:%d/%m/%Y}")
        if case.outcome[1] == "other-hcf":
            return data.NOTE_TRANSFER
        department = data.DEPARTMENTS[case.scenario.department]
        return self.rng.choice(data.NOTE_DISCHARGE).format(department=department)

    def _vitals_words(self) -> dict[str, str]:
        rng = self.rng
        return {
            "hr": str(rng.randint(62, 110)),
            "sys": str(rng.randint(100, 160)),
            "dia": str(rng.randint(60, 95)),
            "temp": f"{rng.uniform(36.3, 38.9):.1f}".replace(".", ","),
            "glu": f"{rng.uniform(4.5, 11.0):.1f}".replace(".", ","),
        }

    # --- spoiling ---------------------------------------------------------------------------------

    def _spoil(self, case: _Case, kind: BadKind, variant: int) -> Planted:
        spoilers: dict[BadKind, Callable[[_Case, int], str | None]] = {
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


def _break_json(case: _Case, variant: int) -> str:
    if variant % 3 == 1:
        condition = case.conditions[0]
        case.raw[id(condition)] = _dumps(condition).replace(b'"code":{', b'"code"{', 1)
        return "Condition"
    observation = case.observations[0] if variant % 3 == 0 else case.observations[-1]
    raw = _dumps(observation)
    if variant % 3 == 0:  # cut short, as by an interrupted write
        raw = raw[: raw.index(b'"effectiveDateTime"') + 12]
    else:  # a stray byte sequence that is not UTF-8 inside the note
        cut = raw.index(b'"valueString":"') + 40
        raw = raw[:cut] + b"\xff\xfe" + raw[cut:]
    case.raw[id(observation)] = raw
    return "Observation"


def _drop_target(case: _Case, variant: int) -> None:
    target = case.patient.resource if variant % 2 == 0 else case.conditions[0]
    case.dropped.add(id(target))


def _drop_period_end(case: _Case, variant: int) -> None:
    del case.encounter["period"]["end"]


def _bad_icd10(case: _Case, variant: int) -> str:
    case.conditions[0]["code"]["coding"][0]["code"] = _INVALID_ICD10[variant % len(_INVALID_ICD10)]
    return "Condition"


def _control_characters(case: _Case, variant: int) -> str | None:
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
        case.raw[id(note)] = _dumps(note).replace(b"\\u0007", b"\x07")
    return "Observation"


def _confusable_member(case: _Case, variant: int) -> str | None:
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


def _orphan(variant: int, fresh_id: str) -> tuple[str, bytes]:
    """A malformed line no encounter can be tied to."""
    lines = (
        ("Encounter", f'{{"resourceType":"Encounter","id":"{fresh_id}","status":"finished","pe'),
        ("Observation", "\udcff\udcfe\x00 not json"),
        ("Condition", "[1,2,3]"),
        ("Patient", '{"resourceType":"Patient","active":true,"name":[{"text":"Nguyễn Văn'),
        ("Observation", '{"resourceType":"Observation","status":"final",'),
    )
    kind, text = lines[variant % len(lines)]
    return kind, text.encode("utf-8", "surrogateescape")


def _ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


_CLASSES: Final = {"AMB": "ambulatory", "IMP": "inpatient encounter", "EMER": "emergency"}
_ROLES: Final = {"AD": "Admission diagnosis", "DD": "Discharge diagnosis"}
_CATEGORIES: Final = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
_DISPOSITIONS: Final = {
    "home": "Home",
    "other-hcf": "Other healthcare facility",
    "exp": "Expired",
    "aadvice": "Left against advice",
}
