"""A run's collection loop: the window's encounters sorted into batches to archive.

Each collected item ends in exactly one place: a batch (new, or an amendment of a catalogued
encounter whose data changed), the count of those already archived or of another facility's, or
the quarantine (bad input, or a record whose retention period ended before it could be locked).
The quarantine entries are kept here until the run has them stored
(:meth:`Collection.store_quarantine`); nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections import abc
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime, timedelta

from archive.catalog.lookup import EncounterLookup
from archive.core.atomic import write_private
from archive.core.settings import Settings
from archive.intake import collect_scans
from archive.pipeline.amendments import ended_before_archiving, sort_known
from archive.pipeline.batch import collect_window
from archive.pipeline.classifier import Classifier, RetentionDecision
from archive.pipeline.options import RunOptions
from archive.pipeline.quarantine import store_entries
from archive.pipeline.summary import RunSummary
from archive.seal import ArchiveKeys
from archive.sources import CollectedItem, EncounterBundle, QuarantineEntry, QuarantineScope
from archive.store import ObjectStore


class Collection:
    """The batches of one run (:meth:`batches`), and what collecting them held back."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: RunOptions,
        known: EncounterLookup,
        classifier: Classifier,
        summary: RunSummary,
        stages: MutableMapping[str, float],
        on_progress: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.options = options
        self._known = known
        self._classifier = classifier
        self._summary = summary
        self._stages = stages
        self._on_progress = on_progress
        self.quarantine: list[QuarantineEntry] = []
        self.held_back = 0  # encounters quarantined as a whole
        self.selected = 0  # encounters the source selected for the window

    def batches(self) -> Iterator[list[EncounterBundle]]:
        """Stream the window's encounters in batches, skipping what the catalog has with the
        same data; changed data comes back as an amendment (a new version beside the old)."""
        fresh: list[EncounterBundle] = []
        known: list[EncounterBundle] = []  # catalogued encounters: compared by the batch
        items = self._collect()
        while True:
            begin = time.perf_counter()
            item = next(items, None)
            self._stages["collect"] += time.perf_counter() - begin
            if item is None:
                break
            if isinstance(item, QuarantineEntry):
                self.quarantine.append(item)
                self.held_back += item.scope == QuarantineScope.ENCOUNTER
                continue
            if self.options.facility not in (None, item.facility_code):
                self._summary.other_facility += 1
                continue
            self._summary.collected += 1
            if item.encounter_id in self._known:
                known.append(item)
            elif past := ended_before_archiving(item, self._classifier, self.options.started_at):
                self.quarantine.append(past)  # past its period: no lock date left to give it
                self.held_back += 1
            else:
                fresh.append(item)
            if len(known) >= self.options.batch_size:
                fresh += self._amendments(known)
                known = []
            while len(fresh) >= self.options.batch_size:
                yield fresh[: self.options.batch_size]
                fresh = fresh[self.options.batch_size :]
        fresh += self._amendments(known)
        for start in range(0, len(fresh), self.options.batch_size):
            yield fresh[start : start + self.options.batch_size]
        self._on_progress()

    def store_quarantine(self, store: ObjectStore, keys: ArchiveKeys) -> int:
        """Seal and store every entry held back (content-addressed: reruns add nothing), count
        them into the summary and list them in the run's local index; returns the entries."""
        begin = time.perf_counter()
        index = self.settings.data_dir / "quarantine" / f"{self.options.run_id}.jsonl"
        index.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        until = self.options.started_at + timedelta(
            days=self.settings.archive.quarantine_retain_days
        )
        stored = store_entries(
            self.quarantine, store=store, keys=keys, seal=self.settings.seal, retain_until=until
        )
        s = self._summary
        for reason, n in stored.reasons.items():
            s.quarantined[reason] = s.quarantined.get(reason, 0) + n
        s.quarantine_new += stored.new
        if stored.errors:
            # Reported, never fatal: the run's archived records must still be catalogued.
            code = "quarantine.store_error"
            s.failed[code] = s.failed.get(code, 0) + stored.errors
        write_private(index, "".join(line + "\n" for line in stored.index_lines))
        self._stages["quarantine"] += time.perf_counter() - begin
        return len(stored.index_lines)

    def _collect(self) -> Iterator[CollectedItem]:
        if self.options.manifest is not None:  # paper intake: a scan directory and its manifest
            return collect_scans(
                self.options.source,
                self.options.manifest,
                tz=self.options.window.tz,
                ocr=self.options.ocr,
                limits=self.settings.intake,
                retention=self._retention,
                now=self.options.started_at,
                catalogued=self._known,  # archived ones are compared, not judged on retention
            )
        return collect_window(
            self.settings, self.options.source, self.options.window, on_selected=self._selected
        )

    def _retention(self, bundle: EncounterBundle) -> tuple[str, datetime]:
        decision = self._classifier.decide(bundle)
        return decision.class_id, decision.retain_until

    def _amendments(self, known: list[EncounterBundle]) -> list[EncounterBundle]:
        """Of encounters the catalog holds, those whose data differs from their newest archived
        version, each as the next revision; the rest are counted as already archived, or
        quarantined when their retention period has ended (:mod:`.amendments`)."""
        versions = self._known.data_versions({b.encounter_id for b in known})
        label = self.options.manifest.name if self.options.manifest else "amendment"
        found = sort_known(
            known,
            versions,
            self._classifier,
            self.options.started_at,
            label,
            self._catalogued_locks,
        )
        self._summary.already_archived += found.unchanged
        self._summary.amended += found.amended
        self.quarantine += found.ended  # a change past its period: a disposition matter
        self.held_back += len(found.ended)
        return found.changed

    def _catalogued_locks(self, encounter_ids: abc.Collection[str]) -> dict[str, RetentionDecision]:
        locks = self._known.longest_locks(encounter_ids)
        return {eid: RetentionDecision(*lock) for eid, lock in locks.items()}

    def _selected(self, count: int) -> None:
        self.selected = count
        self._on_progress()
