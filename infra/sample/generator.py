"""A deterministic, realistic sample FHIR Bulk Data export of a Vietnamese provincial hospital.

``write_sample_export`` writes one NDJSON file per resource type plus ``manifest.json`` (the
Bulk Data status response: ``transactionTime``, ``request``, ``output``) the way a FHIR server's
``$export`` does. All data is fictitious. The same arguments always give the same bytes.

Encounters: ~82 % finish on ``day`` (local time), ~6 % the day before, ~6 % early the day after
(before the export ran), ~6 % are still ``in-progress``; the first of each sits exactly on a window
boundary. A share of the in-window encounters is made bad on purpose, one kind each (see
:class:`BadKind`), plus a few malformed lines that belong to no encounter; the returned
:class:`SampleSummary` is the answer a collector must give.

This module holds the plan (which encounter is when, which is bad) and the order of the draws;
people, clinical content, notes, faults and the files are made by the sibling modules.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Final

from archive.sources import DEFAULT_TZ, zone
from infra.sample import bad_records, tables
from infra.sample.bad_records import Plant
from infra.sample.clinical import Case, Clinical
from infra.sample.dice import Dice
from infra.sample.export import MANIFEST_NAME, NdjsonWriter, write_manifest
from infra.sample.people import People
from infra.sample.summary import EXPECTED_REASON, BadKind, Planted, SampleSummary

__all__ = [
    "EXPECTED_REASON",
    "MANIFEST_NAME",
    "BadKind",
    "Planted",
    "SampleSummary",
    "write_sample_export",
]

EXPORT_HOUR: Final = 3  # the export runs at 03:00 local the next morning
_WEIGHTS: Final = [s.weight for s in tables.SCENARIOS]


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
    generator = _Generator(Dice(rng), day=day, tz=zone(tz), encounters=encounters)
    generator.plan(bad_share)
    with NdjsonWriter(out_dir) as writer:
        generator.write(writer)
    write_manifest(out_dir, writer, generator.taken_at, day, seed)
    return generator.summary(out_dir=out_dir, seed=seed, tz=tz, writer=writer)


class _Generator:
    def __init__(self, dice: Dice, *, day: date, tz: tzinfo, encounters: int) -> None:
        self.dice, self.rng, self.day, self.tz, self.n = dice, dice.rng, day, tz, encounters
        self.taken_at = datetime.combine(day + timedelta(days=1), time(EXPORT_HOUR), tzinfo=tz)
        self.timings: list[str] = []
        self.plants: dict[int, Plant] = {}
        self.orphans: dict[int, list[int]] = {}
        self.boundary: dict[int, datetime] = {}
        self.planted: list[Planted] = []
        self.good_in: list[str] = []
        self.outside = self.open = 0
        self.people = People(dice)
        organizations = [self.people.organization(f.code, f.name) for f in tables.FACILITIES]
        self.practitioners = [self.people.practitioner(i) for i in range(max(12, encounters // 40))]
        self.clinical = Clinical(dice, organizations)
        self.organizations = organizations

    # --- the plan: timings, plants, boundaries ----------------------------------------------------

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

    def write(self, writer: NdjsonWriter) -> None:
        for resource in [*self.organizations, *self.practitioners]:
            writer.resource(resource)
        for index in range(self.n):
            for variant in self.orphans.get(index, []):
                writer.line(*bad_records.orphan(variant, self.dice.uuid()))
            case = self._case(index)
            plant = self.plants.get(index)
            if plant is not None:
                self.planted.append(bad_records.spoil(case, *plant))
            elif case.timing == "in":
                self.good_in.append(case.encounter["id"])
            elif case.timing == "open":
                self.open += 1
            else:
                self.outside += 1
            _emit(case, writer)

    def summary(self, *, out_dir: Path, seed: int, tz: str, writer: NdjsonWriter) -> SampleSummary:
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

    def _case(self, index: int) -> Case:
        rng, timing, plant = self.rng, self.timings[index], self.plants.get(index)
        scenario = rng.choices(tables.SCENARIOS, weights=_WEIGHTS)[0]
        fatal = timing != "open" and rng.random() < scenario.fatal_rate
        end = None if timing == "open" else self.boundary.get(index) or self._end(timing)
        klass = rng.choice(scenario.classes)
        start = self._start(klass, end)
        shareable = not fatal and plant is None
        patient, new = self.people.patient_for(scenario, start, shareable=shareable)
        bad_records.spoil_patient_id(patient, plant)
        case = Case(
            timing=timing,
            scenario=scenario,
            patient=patient,
            new_patient=new,
            enc_id=bad_records.spoil_encounter_id(self.dice.uuid(), plant),
            doctor=rng.choice(self.practitioners)["id"],
            outcome=None if end is None else self.clinical.outcome(fatal),
        )
        self.clinical.fill(case, start, end or self.taken_at - timedelta(minutes=30))
        case.encounter = self.clinical.encounter(case, klass, start, end)
        if fatal and end is not None:
            patient.resource["deceasedDateTime"] = end.isoformat(timespec="seconds")
        return case

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


def _emit(case: Case, writer: NdjsonWriter) -> None:
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
