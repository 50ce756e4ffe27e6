"""The sample's people: patients (some of whom come back), doctors and the facilities.

Takes a :class:`~infra.sample.dice.Dice` and a scenario; returns FHIR Patient, Practitioner and
Organization resources with Vietnamese names, addresses, citizen-id (CCCD) and health-insurance
(BHYT) numbers built the way the real ones are, so that the renderer and the retention rules meet
realistic values. Everything is fictitious.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from archive.sources import fhir
from infra.sample import tables
from infra.sample.dice import Dice
from infra.sample.tables import Scenario


@dataclass(slots=True)
class Person:
    id: str
    sex: str
    birth: date
    resource: dict[str, Any]


class People:
    def __init__(self, dice: Dice) -> None:
        self.dice = dice
        self.pool: list[Person] = []  # patients who may come back

    def patient_for(
        self, scenario: Scenario, at: datetime, *, shareable: bool
    ) -> tuple[Person, bool]:
        """A patient for an encounter starting ``at``, and whether they are new (not yet written).

        Only ``shareable`` patients come back for a later encounter: never the dead, nor the
        patient of a planted bad encounter (a spoiled Patient would spoil the other encounter
        too, and the answer key counts one bad encounter per plant).
        """
        rng = self.dice.rng
        if shareable and self.pool and scenario.sex is None and rng.random() < 0.1:
            person = rng.choice(self.pool)
            age = at.year - person.birth.year
            if scenario.ages[0] <= age <= scenario.ages[1]:
                return person, False
        person = self._new_patient(scenario, at)
        if shareable:
            self.pool.append(person)
        return person, True

    def _new_patient(self, scenario: Scenario, at: datetime) -> Person:
        rng = self.dice.rng
        sex = scenario.sex or rng.choice(("male", "female"))
        age = rng.randint(*scenario.ages)
        birth = date(at.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        if birth >= at.date():
            birth = at.date() - timedelta(days=rng.randrange(1, 300))
        family, middle, given = self._name(sex)
        provinces = tables.PROVINCES
        code, province, _ = rng.choices(provinces, weights=[p.weight for p in provinces])[0]
        number = self.dice.next_seq()
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": self.dice.uuid(),
            "identifier": [
                {"system": fhir.SYS_CCCD, "value": self._cccd(code, sex, birth)},
                {"system": fhir.SYS_BHYT, "value": self._bhyt(code, age)},
                {"system": fhir.SYS_PATIENT, "value": f"BN{birth.year % 100:02d}{number:07d}"},
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
        return Person(resource["id"], sex, birth, resource)

    def _name(self, sex: str) -> tuple[str, str, str]:
        rng = self.dice.rng
        names = tables.FAMILY_NAMES
        family = rng.choices(names, weights=[f.weight for f in names])[0].value
        male = sex == "male"
        middle = rng.choice(tables.MIDDLE_MALE if male else tables.MIDDLE_FEMALE)
        given = rng.choice(tables.GIVEN_MALE if male else tables.GIVEN_FEMALE)
        return family, middle, given

    def _cccd(self, province: str, sex: str, birth: date) -> str:
        # The 4th digit encodes sex and century of birth, as on a real CCCD.
        century = 0 if birth.year < 2000 else 2
        marker = century + (0 if sex == "male" else 1)
        return f"{province}{marker}{birth.year % 100:02d}{self.dice.rng.randrange(10**6):06d}"

    def _bhyt(self, province: str, age: int) -> str:
        rng = self.dice.rng
        if age < 6:
            kind = "TE"
        elif age < 18:
            kind = "HS"
        else:
            objects = tables.BHYT_OBJECTS
            kind = rng.choices(objects, weights=[o.weight for o in objects])[0].value
        level = 1 if kind == "TE" else rng.choice((2, 3, 4, 4, 4, 5))
        return f"{kind}{level}{province[-2:]}{rng.randrange(10**10):010d}"

    def _phone(self) -> str:
        rng = self.dice.rng
        return f"0{rng.choice(('9', '8', '3', '7'))}{rng.randrange(10**8):08d}"

    def _address(self, province: str) -> dict[str, Any]:
        rng = self.dice.rng
        district, wards = rng.choice(tables.DISTRICTS)
        ward = rng.choice(wards)
        if province != "tỉnh Hòa Bình":
            district, ward = "", ""
        if ward.startswith("phường") or not ward:
            line = f"Số {rng.randrange(1, 300)}, đường {rng.choice(tables.STREETS)}"
        else:
            line = rng.choice(tables.HAMLETS)
        parts = [p for p in (line, ward, district, province) if p]
        return {
            "use": "home",
            "text": ", ".join(parts),
            "line": [line],
            "state": province,
            "country": "VN",
        }

    def organization(self, code: str, name: str) -> dict[str, Any]:
        return {
            "resourceType": "Organization",
            "id": self.dice.uuid(),
            "identifier": [{"system": fhir.SYS_FACILITY, "value": code}],
            "active": True,
            "name": name,
            "address": [{"text": "tỉnh Hòa Bình", "country": "VN"}],
        }

    def practitioner(self, index: int) -> dict[str, Any]:
        rng = self.dice.rng
        sex = rng.choice(("male", "female"))
        family, middle, given = self._name(sex)
        return {
            "resourceType": "Practitioner",
            "id": self.dice.uuid(),
            "identifier": [{"system": fhir.SYS_PRACTITIONER, "value": f"{index + 1:06d}/HB-CCHN"}],
            "name": [
                {
                    "text": f"{family} {middle} {given}",
                    "family": family,
                    "given": [middle, given],
                    "prefix": [rng.choice(tables.PRACTITIONER_TITLES)],
                }
            ],
            "gender": sex,
        }
