"""Who may do what through retrieval: the roles, the actions and the table between them.

Retrieval only *reads* records: no role has an action that changes or deletes one (those go
through retention, with its own rules and audit). An inspector's record actions also need an
active grant covering the record (:mod:`retrieval.access.grants`); the role alone is not enough.

=================  ==========  ==========  ==========  ==========  ==========
action             records-    inspector   auditor     admin       facility-
                   officer     (granted)                           head (+del.)
=================  ==========  ==========  ==========  ==========  ==========
record.search      yes         grant       no          no          no
record.view        yes         grant       no          no          no
record.export      yes         grant       no          no          no
grant.manage       yes         no          no          no          no
audit.read         no          no          yes         yes         yes
user.manage        no          no          no          no          no
=================  ==========  ==========  ==========  ==========  ==========

Admins manage accounts, not records, and auditors read the log, not records (separation of
duties). The facility head and the delegate named in writing (``facility-head-delegate``) do
not read records here: they approve destructions (:data:`DISPOSITION_APPROVERS`, the roles
retention's four-eyes rule accepts, :data:`retention.APPROVING_ROLES`) and may read the log of
what they approve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from retrieval.errors import AccessDeniedError


class Role(StrEnum):
    RECORDS_OFFICER = "records-officer"
    INSPECTOR = "inspector"
    AUDITOR = "auditor"
    ADMIN = "admin"
    FACILITY_HEAD = "facility-head"
    HEAD_DELEGATE = "facility-head-delegate"


class Action(StrEnum):
    SEARCH = "record.search"
    VIEW = "record.view"
    EXPORT = "record.export"
    GRANT_MANAGE = "grant.manage"
    AUDIT_READ = "audit.read"
    USER_MANAGE = "user.manage"


RECORD_ACTIONS: Final = frozenset({Action.SEARCH, Action.VIEW, Action.EXPORT})
PERMISSIONS: Final[Mapping[Role, frozenset[Action]]] = {
    Role.RECORDS_OFFICER: frozenset({*RECORD_ACTIONS, Action.GRANT_MANAGE}),
    Role.INSPECTOR: RECORD_ACTIONS,  # only within an active grant
    Role.AUDITOR: frozenset({Action.AUDIT_READ}),
    Role.ADMIN: frozenset({Action.AUDIT_READ, Action.USER_MANAGE}),
    Role.FACILITY_HEAD: frozenset({Action.AUDIT_READ}),
    Role.HEAD_DELEGATE: frozenset({Action.AUDIT_READ}),
}
GRANT_BOUND: Final = frozenset({Role.INSPECTOR})
DISPOSITION_APPROVERS: Final = frozenset({Role.FACILITY_HEAD, Role.HEAD_DELEGATE})
# Who may confirm the release of a legal hold someone else requested.
HOLD_RELEASERS: Final = frozenset({Role.RECORDS_OFFICER, *DISPOSITION_APPROVERS})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``token_id`` is None for a password sign-in without a token."""

    username: str
    role: Role
    token_id: str | None = None
    expires_at: datetime | None = None


def require(principal: Principal, action: Action) -> None:
    """Raise AccessDeniedError unless the role has ``action`` (grants are checked per record)."""
    if action not in PERMISSIONS[principal.role]:
        raise AccessDeniedError(
            f"role {principal.role.value} may not {action.value}; ask a records officer"
        )
