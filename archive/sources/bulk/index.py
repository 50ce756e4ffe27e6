"""Passes 1 and 2: select tonight's encounters and index where their resources are.

Takes the export's files; yields a ``LINE`` quarantine entry for each bad line met on the way and
leaves behind, in the :class:`Indexer`, the selected encounters (:class:`Selected`) with the
positions of their clinical lines and any problem already known, plus the positions of the
Patients, Organizations and Practitioners they need. Only positions are kept, never resources,
so memory grows with tonight's encounters, not with the export.

1. ``Encounter`` files: select ``status == "finished"`` with ``period.end`` in the window (a
   finished encounter without a usable ``period.end`` is selected with a problem: its day cannot
   be known) and note the Patients, Organizations, Practitioners and diagnosis Conditions they
   reference.
2. the other files, once each (Condition, Procedure, MedicationRequest, Observation, then Patient,
   Organization, Practitioner): remember the lines a selected encounter needs, deciding from the
   byte-level :func:`~archive.sources.bulk.scan.scan` where it can; lines that name only other
   encounters are left, unparsed, for the night their encounter is collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from archive.sources import fhir
from archive.sources.bulk.checks import Problem, diagnoses
from archive.sources.bulk.manifest import DIRECTORY, ExportFile
from archive.sources.bulk.ndjson import Bad, Line, Parsed, parse, position, read_lines
from archive.sources.bulk.scan import salvaged_encounter, salvaged_id, scan
from archive.sources.fhir import Ref, Resource
from archive.sources.model import Window
from archive.sources.quarantine import QuarantineEntry, QuarantineReason, QuarantineScope

R = QuarantineReason


@dataclass(slots=True)
class Selected:
    """A finished encounter of the window, as the index knows it."""

    id: str
    line: int  # position of its Encounter line
    problems: list[Problem]
    members: list[int] = field(default_factory=list)  # positions of its clinical lines


class Indexer:
    def __init__(self, *, window: Window, limit: int) -> None:
        self.window = window
        self.limit = limit
        self.encounters: list[Selected] = []
        self.by_id: dict[str, int] = {}  # selected encounter id -> first ordinal
        self.want_condition: dict[str, list[int]] = {}  # diagnosis Condition id -> ordinals
        self.want_directory: dict[str, set[str]] = {t: set() for t in DIRECTORY}
        self.found: dict[str, dict[str, int]] = {t: {} for t in DIRECTORY}  # id -> position
        self.duplicates: set[Ref] = set()
        self.broken: dict[Ref, Problem] = {}  # wanted directory resources on malformed lines

    def read(self, files: list[ExportFile]) -> Iterator[QuarantineEntry]:
        """Run both passes (the Encounter files come first), yielding bad lines as met."""
        for file in files:
            for line in read_lines(file, self.limit):
                if file.resource_type == "Encounter":
                    yield from self._select(line)
                else:
                    yield from self._index(line)

    # --- pass 1: encounters -----------------------------------------------------------------------

    def _select(self, line: Line) -> Iterator[QuarantineEntry]:
        parsed = parse(line, self.limit)
        if isinstance(parsed, Bad):
            # Which encounter this was, and whether it is in the window, cannot be known.
            yield line_entry(line, parsed, None, salvaged_id(line.raw))
            return
        encounter = parsed.resource
        if encounter.get("status") != "finished":
            return
        enc_id = encounter.get("id")
        if not isinstance(enc_id, str):
            bad = Bad(R.INVALID_ID, "finished Encounter without a string id")
            yield line_entry(line, bad, None, enc_id)
            return
        problems = self._period_end_problems(encounter)
        if problems is not None:  # None: finished outside the window
            self._register(enc_id, position(line), parsed, problems)

    def _period_end_problems(self, encounter: Resource) -> list[Problem] | None:
        period = encounter.get("period")
        end = period.get("end") if isinstance(period, dict) else None
        if end is None:
            return [Problem(R.MISSING_PERIOD_END, "finished Encounter has no period.end")]
        moment = fhir.parse_datetime(end, date_tz=self.window.tz)
        if moment is None:
            return [Problem(R.INVALID_DATETIME, "Encounter.period.end is not a FHIR dateTime")]
        return [] if moment in self.window else None

    def _register(self, enc_id: str, line: int, parsed: Parsed, problems: list[Problem]) -> None:
        ordinal = len(self.encounters)
        self.encounters.append(Selected(enc_id, line, problems))
        first = self.by_id.setdefault(enc_id, ordinal)
        if first != ordinal:
            twice = Problem(R.DUPLICATE_ID, "two finished Encounters in the window share this id")
            self.encounters[first].problems.append(twice)
            problems.append(twice)
        if problems:
            return
        self._want_directory(parsed.refs)
        for target in diagnoses(parsed.resource):
            self.want_condition.setdefault(target.id, []).append(ordinal)

    def _want_directory(self, refs: tuple[Ref, ...]) -> None:
        for target in refs:
            if target.resource_type in DIRECTORY:
                self.want_directory[target.resource_type].add(target.id)

    # --- pass 2: index the other files ------------------------------------------------------------

    def _index(self, line: Line) -> Iterator[QuarantineEntry]:
        kind = line.file.resource_type
        wants_ids = kind == "Condition" or kind in DIRECTORY
        scanned = scan(line.raw, ids=wants_ids) if line.oversized is None else None
        if scanned is not None and self._index_scanned(line, *scanned):
            return
        parsed = parse(line, self.limit)
        if isinstance(parsed, Bad):
            yield self._bad_member_line(line, parsed)
            return
        rid = parsed.resource.get("id")
        if kind in DIRECTORY:
            if isinstance(rid, str) and rid in self.want_directory[kind]:
                self._found(kind, rid, line)
            return
        owners = self._owners(kind, rid, parsed.resource)
        if owners:
            self._add_member(line, owners, parsed.refs)

    def _index_scanned(self, line: Line, refs: tuple[Ref, ...], ids: list[str]) -> bool:
        """Index from the scan; ``False`` when the scan cannot tell whose line this is."""
        kind = line.file.resource_type
        if kind in DIRECTORY:
            for rid in ids:
                if rid in self.want_directory[kind]:
                    self._found(kind, rid, line)
            return bool(ids)
        encounters = [r.id for r in refs if r.resource_type == "Encounter"]
        owners = [self.by_id[e] for e in encounters if e in self.by_id]
        if kind == "Condition":
            owners += [o for rid in ids for o in self.want_condition.get(rid, ())]
        if owners:
            self._add_member(line, list(dict.fromkeys(owners)), refs)
        # Lines that name only other encounters belong to other nights.
        return bool(owners or encounters)

    def _found(self, kind: str, rid: str, line: Line) -> None:
        at = position(line)
        if self.found[kind].setdefault(rid, at) != at:
            self.duplicates.add(Ref(kind, rid))

    def _add_member(self, line: Line, owners: list[int], refs: tuple[Ref, ...]) -> None:
        at = position(line)
        for ordinal in owners:
            self.encounters[ordinal].members.append(at)
        self._want_directory(refs)

    def _owners(self, kind: str, rid: object, resource: Resource) -> list[int]:
        owners: list[int] = []
        target = fhir.reference(resource, "encounter")
        if target is not None and target.resource_type == "Encounter" and target.id in self.by_id:
            owners.append(self.by_id[target.id])
        if kind == "Condition" and isinstance(rid, str):
            owners.extend(self.want_condition.get(rid, ()))
        return list(dict.fromkeys(owners))

    def _bad_member_line(self, line: Line, bad: Bad) -> QuarantineEntry:
        """A line that is not a usable resource, tied by a raw-bytes guess to its encounter."""
        kind, rid = line.file.resource_type, salvaged_id(line.raw)
        enc_id = salvaged_encounter(line.raw)
        owners = [self.by_id[enc_id]] if enc_id in self.by_id else []
        if kind == "Condition" and rid is not None:
            owners.extend(self.want_condition.get(rid, ()))
        detail = f"{kind} at {line.file.name}:{line.number}: {bad.detail}"
        problem = Problem(bad.reason, detail, position(line), emitted=True)
        if kind in DIRECTORY and rid is not None and rid in self.want_directory[kind]:
            self.broken.setdefault(Ref(kind, rid), problem)
        for ordinal in dict.fromkeys(owners):
            self.encounters[ordinal].problems.append(problem)
        enc_id = self.encounters[owners[0]].id if owners else None
        return line_entry(line, bad, enc_id, rid)


def line_entry(line: Line, bad: Bad, enc_id: str | None, rid: object) -> QuarantineEntry:
    return QuarantineEntry(
        reason=bad.reason,
        scope=QuarantineScope.LINE,
        source_file=line.file.name,
        line_number=line.number,
        resource_type=line.file.resource_type,
        resource_id=rid,
        encounter_id=enc_id,
        detail=bad.detail,
        raw_line=line.raw,
    )
