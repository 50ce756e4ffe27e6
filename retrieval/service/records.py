"""Finding records: search and the dossier page, for records officers and granted inspectors.

Each call checks the role, then (for an inspector) the active grants, brings the index up to the
catalog and the verification log, looks the rows up, and keeps only what the grants cover. A hit
shows the record's current lock (a later extension wins over the catalog's retain-until), hold
and last verification; never the document itself (that is :mod:`retrieval.service.export`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from archive.catalog import HEAD_FILE, Catalog
from archive.core.errors import ArchiveError
from retrieval.access import GRANT_BOUND, AccessDeniedError, Action, Grant, Principal, Role, require
from retrieval.service.parts import ServiceParts
from retrieval.service.query import MAX_RESULTS, Hit, Query, SearchResult, covered
from verification.config import output_directory
from verification.log import log_dir


class RecordReads(ServiceParts):
    def pseudonym(self, patient_id: str) -> str:
        """A patient id becomes its pseudonym here and goes no further."""
        return self.keyring.pseudonym(patient_id)

    def search(self, principal: Principal, query: Query, *, now: datetime) -> SearchResult:
        entities = query.entities()
        with self._audited(principal, "retrieval.search", now, entities, query.describe()) as ev:
            grants = self._authorise(principal, Action.SEARCH, now)
            rows = self._rows(query)
            allowed = [r for r in rows if covered(principal, grants, r)]
            hits = self._hits(principal, allowed)
            ev["grants"] = ",".join(g.grant_id for g in grants)
            ev["results"] = len(hits)
            return SearchResult(tuple(hits[:MAX_RESULTS]), len(hits) > MAX_RESULTS)

    def view(self, principal: Principal, encounter_id: str, *, now: datetime) -> list[Hit]:
        """The dossier page: every version of one encounter with its state (no document bytes)."""
        with self._audited(principal, "retrieval.view", now, [("encounter", encounter_id)]) as ev:
            grants = self._authorise(principal, Action.VIEW, now)
            rows = self._rows(Query(encounter_id=encounter_id))
            self._require_covered(principal, grants, rows)
            ev["grants"] = ",".join(g.grant_id for g in grants)
            return self._hits(principal, rows)

    def refresh(self) -> None:
        """Bring the index up to the catalog and the verification log (cheap when current)."""
        head = self.catalog.directory / HEAD_FILE
        current = head.read_bytes() if head.exists() else b""
        if current != self._head:  # reopening verifies the whole chain: only when it grew
            self.catalog = Catalog.open(self.catalog.directory)
            self.index.sync(self.catalog)
            self._head = current
        out = output_directory(self.settings, self.settings.verification)
        self.index.sync_verification(log_dir(out))

    def _authorise(self, principal: Principal, action: Action, now: datetime) -> list[Grant]:
        """The role check, then the grants an inspector needs (none is a refusal)."""
        require(principal, action)
        grants: list[Grant] = []
        if principal.role in GRANT_BOUND:
            grants = self.access.active_grants(principal.username, now)
            if not grants:
                raise AccessDeniedError(
                    f"inspector {principal.username} holds no active grant: ask a records officer"
                )
        self.refresh()
        return grants

    def _rows(self, q: Query) -> list[dict[str, Any]]:
        """The indexed rows a query matches, without encounters already destroyed."""
        if q.encounter_id:
            rows = self.index.by_encounter(q.encounter_id)
        elif q.patient_pseudonym:
            rows = self.index.by_patient(q.patient_pseudonym)
        elif q.facility or q.retention_class:
            start, end = self._day_range(q.discharged_from, q.discharged_to)
            if q.facility:
                rows = self.index.by_facility(q.facility, start=start, end=end, limit=5000)
                if q.retention_class:
                    rows = [r for r in rows if r["retention_class"] == q.retention_class]
            else:
                assert q.retention_class is not None
                rows = self.index.by_class(q.retention_class, start=start, end=end, limit=5000)
        else:
            raise ArchiveError("search by encounter, patient, facility or retention class")
        gone = self.register.destroyed_encounters()
        return [r for r in rows if r["encounter_id"] not in gone]

    def _day_range(self, first: date | None, last: date | None) -> tuple[datetime, datetime]:
        tz = ZoneInfo(self.settings.archive.timezone)
        start = datetime.combine(first or date(1900, 1, 1), time(), tzinfo=tz)
        end = datetime.combine((last or date(9998, 12, 31)) + timedelta(days=1), time(), tzinfo=tz)
        return start, end

    def _hits(self, principal: Principal, rows: Sequence[dict[str, Any]]) -> list[Hit]:
        """One hit per encounter: its newest version, with the register's lock and hold."""
        by_encounter: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_encounter.setdefault(r["encounter_id"], []).append(r)
        verified = self.index.last_verification(list(by_encounter))
        held, changes = self.register.held_encounters(), self.register.lock_changes()
        show_patient = principal.role is Role.RECORDS_OFFICER
        hits = []
        for eid, versions in by_encounter.items():
            newest = max(versions, key=lambda r: r["signed_at"])
            cls, until = newest["retention_class"], newest["retain_until"]
            if eid in changes and changes[eid][1] > until:
                cls, until = changes[eid]
            hits.append(
                Hit(
                    eid,
                    newest["facility"],
                    newest["admitted_at"],
                    newest["discharged_at"],
                    cls,
                    until,
                    eid in held,
                    len(versions),
                    verified.get(eid),
                    newest["patient_pseudonym"] if show_patient else None,
                )
            )
        return hits

    def _require_covered(
        self, principal: Principal, grants: Sequence[Grant], rows: Sequence[dict[str, Any]]
    ) -> None:
        # An empty match is refused like an uncovered one for an inspector: the answer must not
        # tell them what exists outside their grant.
        if not rows and principal.role not in GRANT_BOUND:
            raise ArchiveError("no catalogued record matched")
        if not rows or not all(covered(principal, grants, r) for r in rows):
            raise AccessDeniedError(
                f"no active grant of {principal.username} covers these records: ask a records "
                "officer for a grant naming them"
            )
