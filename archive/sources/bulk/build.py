"""Pass 3: one selected encounter at a time, read its lines back, check them, bundle or quarantine.

Takes a :class:`~archive.sources.bulk.index.Selected` encounter and the index of passes 1-2;
yields an :class:`EncounterBundle`, or an ``ENCOUNTER`` quarantine entry followed by the ``LINE``
entries of its bad lines not yet reported. Only this encounter's resources are in memory at once:
they are re-read by position from handles opened once for the whole pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from archive.sources import fhir
from archive.sources.bulk.assemble import assemble
from archive.sources.bulk.checks import (
    Loaded,
    Problem,
    belongs,
    check_encounter,
    check_resource,
    diagnoses,
    duplicates,
    missing_diagnoses,
)
from archive.sources.bulk.index import Indexer, Selected
from archive.sources.bulk.manifest import DIRECTORY, ExportFile
from archive.sources.bulk.ndjson import Bad, Parsed, changed, decode, read_at, unpack
from archive.sources.bulk.scan import salvaged_id
from archive.sources.fhir import Ref, Resource
from archive.sources.model import CollectedItem, EncounterBundle, Window
from archive.sources.quarantine import QuarantineEntry, QuarantineReason, QuarantineScope

R = QuarantineReason


class Builder:
    def __init__(
        self,
        *,
        files: list[ExportFile],
        handles: dict[int, IO[bytes]],
        index: Indexer,
        window: Window,
    ) -> None:
        self.files = files
        self.handles = handles  # file index -> unbuffered handle
        self.index = index
        self.window = window
        self.emitted: set[int] = set()  # positions whose LINE entry was yielded

    def finish(self, enc: Selected) -> Iterator[CollectedItem]:
        problems = enc.problems
        if not problems:
            built = self._build(enc)
            if isinstance(built, EncounterBundle):
                yield built
                return
            problems = built
        yield from self._quarantine(enc, problems)

    def _build(self, enc: Selected) -> EncounterBundle | list[Problem]:
        encounter = self._load_encounter(enc)
        clinical, bad_lines = self._load_members(enc, encounter.resource)
        directory, unresolved = self._resolve_directory([encounter, *clinical])
        loaded = [encounter, *directory, *clinical]
        # The Encounter's own problems first: they decide the reason shown for it.
        problems = check_encounter(encounter.resource, directory, tz=self.window.tz)
        problems += bad_lines + unresolved
        problems += missing_diagnoses(encounter.resource, clinical)
        patient = fhir.reference(encounter.resource, "subject")
        for item in loaded:
            problems += check_resource(
                item, patient, is_encounter=item is encounter, where=self.where
            )
        problems += duplicates(loaded, where=self.where)
        return problems or assemble(enc.id, [item.resource for item in loaded], self.window)

    def _load_members(
        self, enc: Selected, encounter: Resource
    ) -> tuple[list[Loaded], list[Problem]]:
        diagnosis_ids = {target.id for target in diagnoses(encounter)}
        members: list[Loaded] = []
        problems: list[Problem] = []
        for position in dict.fromkeys(enc.members):
            item = self._load(position)
            if isinstance(item, Bad):
                detail = f"{self.where(position)}: {item.detail}"
                problems.append(Problem(item.reason, detail, position))
            elif belongs(item.resource, enc.id, diagnosis_ids):
                members.append(item)
        return members, problems

    def _resolve_directory(self, items: list[Loaded]) -> tuple[list[Loaded], list[Problem]]:
        targets = dict.fromkeys(
            target for item in items for target in item.refs if target.resource_type in DIRECTORY
        )
        loaded: list[Loaded] = []
        problems: list[Problem] = []
        for target in targets:
            item = self._resolve(target)
            if isinstance(item, Problem):
                problems.append(item)
            else:
                loaded.append(item)
        return loaded, problems

    def _resolve(self, target: Ref) -> Loaded | Problem:
        kind = target.resource_type
        position = self.index.found[kind].get(target.id)
        if target in self.index.duplicates:
            return Problem(R.DUPLICATE_ID, f"two {kind} lines carry an id it references")
        if position is None:
            missing = f"references a {kind} that is not in the export"
            return self.index.broken.get(target) or Problem(R.UNRESOLVED_REFERENCE, missing)
        item = self._load(position)
        if isinstance(item, Bad):
            return Problem(item.reason, f"{self.where(position)}: {item.detail}", position)
        if item.resource.get("id") != target.id:
            return Problem(R.UNRESOLVED_REFERENCE, f"references a {kind} that is not in the export")
        return item

    # --- quarantine and reading back --------------------------------------------------------------

    def _quarantine(self, enc: Selected, problems: list[Problem]) -> Iterator[QuarantineEntry]:
        first, others = problems[0], problems[1:]
        detail = first.detail
        if others:
            detail += f" (+{len(others)} more: {', '.join(sorted({p.reason for p in others}))})"
        yield self._entry_at(enc.line, first.reason, QuarantineScope.ENCOUNTER, enc.id, detail)
        for problem in problems:
            if problem.line is None or problem.emitted or problem.line in self.emitted:
                continue
            self.emitted.add(problem.line)
            scope = QuarantineScope.LINE
            yield self._entry_at(problem.line, problem.reason, scope, enc.id, problem.detail)

    def _entry_at(
        self,
        position: int,
        reason: QuarantineReason,
        scope: QuarantineScope,
        enc_id: str,
        detail: str,
    ) -> QuarantineEntry:
        index, number, length, offset = unpack(position)
        file = self.files[index]
        raw = read_at(self.handles[index], file, offset, length)
        parsed = decode(raw, file, first=number == 1)
        rid = parsed.resource.get("id") if isinstance(parsed, Parsed) else salvaged_id(raw)
        return QuarantineEntry(
            reason=reason,
            scope=scope,
            source_file=file.name,
            line_number=number,
            resource_type=file.resource_type,
            resource_id=rid,
            encounter_id=enc_id,
            detail=detail,
            raw_line=raw,
        )

    def where(self, position: int) -> str:
        index, number, _, _ = unpack(position)
        file = self.files[index]
        return f"{file.resource_type} at {file.name}:{number}"

    def _load(self, position: int) -> Loaded | Bad:
        index, number, length, offset = unpack(position)
        file = self.files[index]
        raw = read_at(self.handles[index], file, offset, length)
        if len(raw) != length:
            raise changed(file, number)
        parsed = decode(raw, file, first=number == 1)
        return parsed if isinstance(parsed, Bad) else Loaded(position, raw, *parsed)

    def _load_encounter(self, enc: Selected) -> Loaded:
        item = self._load(enc.line)
        if isinstance(item, Bad) or item.resource.get("id") != enc.id:
            index, number, _, _ = unpack(enc.line)
            raise changed(self.files[index], number)
        return item
