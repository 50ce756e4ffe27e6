"""Oversight: who was allowed what (grants, managed by records officers) and who did what (the
audit log, read by auditors and admins).

Grants are events in the locked access register (:class:`retrieval.access.AccessRegister`): an
issued grant is never edited, only revoked by a later event with a reason. Reading the grants or
the log is itself audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from archive.audit import AuditEvent
from archive.core.errors import ArchiveError
from retrieval.access import Action, Grant, Principal, Role, new_grant, require
from retrieval.service.parts import ServiceParts


class Oversight(ServiceParts):
    def issue_grant(
        self,
        principal: Principal,
        *,
        now: datetime,
        inspector: str,
        case_ref: str,
        valid_from: datetime,
        valid_until: datetime,
        facility: str | None = None,
        encounter_ids: Sequence[str] = (),
        patient_pseudonym: str | None = None,
    ) -> Grant:
        """A records officer lets ``inspector`` find and export records in scope until
        ``valid_until``; every given scope element must match a record."""
        with self._audited(principal, "retrieval.grant.issue", now, []) as ev:
            require(principal, Action.GRANT_MANAGE)
            account = self.users.get(inspector)
            if account is None or account.role is not Role.INSPECTOR:
                raise ArchiveError(f"{inspector} is not an inspector account")
            grant = new_grant(
                issued_by=principal.username,
                inspector=inspector,
                case_ref=case_ref,
                valid_from=valid_from,
                valid_until=valid_until,
                facility=facility,
                encounter_ids=encounter_ids,
                patient_pseudonym=patient_pseudonym,
            )
            self.access.append(grant.to_event(), now=now)
            ev.update(
                grant=grant.grant_id, inspector=grant.inspector, until=grant.valid_until.isoformat()
            )
            return grant

    def revoke_grant(
        self, principal: Principal, grant_id: str, *, reason: str, now: datetime
    ) -> None:
        with self._audited(principal, "retrieval.grant.revoke", now, []) as ev:
            require(principal, Action.GRANT_MANAGE)
            if grant_id not in self.access.grants():
                raise ArchiveError(f"no active grant {grant_id}")
            self.access.append(
                {
                    "type": "grant.revoked",
                    "grant_id": grant_id,
                    "by": principal.username,
                    "reason": reason,
                },
                now=now,
            )
            ev["grant"] = grant_id

    def grants(self, principal: Principal, *, now: datetime) -> list[Grant]:
        """Records officers see all grants; an inspector sees their own active ones."""
        with self._audited(principal, "retrieval.grant.list", now, []) as ev:
            if principal.role is Role.INSPECTOR:
                grants = self.access.active_grants(principal.username, now)
            else:
                require(principal, Action.GRANT_MANAGE)
                grants = list(self.access.grants().values())
            ev["results"] = len(grants)
            return grants

    def inspectors(self, principal: Principal) -> list[str]:
        """The enabled inspector accounts a records officer may grant to."""
        require(principal, Action.GRANT_MANAGE)
        return sorted(
            u.username
            for u in self.users.users().values()
            if u.role is Role.INSPECTOR and not u.disabled
        )

    def audit_events(
        self,
        principal: Principal,
        *,
        now: datetime,
        actor: str | None = None,
        action: str | None = None,
    ) -> list[AuditEvent]:
        with self._audited(principal, "retrieval.audit.read", now, []) as ev:
            require(principal, Action.AUDIT_READ)
            with self._audit_lock:  # the chain's cache is shared with threads appending
                events = self.audit.show(actor=actor, action=action)
            ev["results"] = len(events)
            return events
