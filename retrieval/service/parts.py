"""What every retrieval call shares: the parts it works with, and the audit event it leaves.

Each area of the service (identities, records, export, oversight) is a mixin on
:class:`ServiceParts`, and :class:`retrieval.Retrieval` is all of them together, so callers
keep one object while each area reads on its own. Every call that touches records, grants,
accounts or the log runs inside :meth:`ServiceParts._audited`: one event with who, role, what
and outcome, appended and flushed before the call returns or raises.

Several threads may share one service (the portal): the audit buffer and its chain are used under
the service's own audit lock, and :meth:`ServiceParts.audit_after` lets a caller that serialises
calls under a lock of its own write their events (an S3 PUT) after releasing it. Refused
authentications go to :attr:`ServiceParts.refusals` when a long-running caller sets one
(:mod:`retrieval.service.refusals`): counted per source and window instead of a segment each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from archive.audit import AuditEvent, AuditLog, ChainReport
from archive.catalog import Catalog
from archive.core.errors import AuditChainError
from archive.seal import ArchiveKeys
from archive.store import ObjectStore
from retention import Register
from retrieval.access import AccessRegister, Principal, TokenService, UserStore
from retrieval.index import SearchIndex
from retrieval.service.refusals import RefusalTally
from verification.config import HoldSet
from verification.evidence import Environment
from verification.settings import VerifySettings as Settings


class ServiceParts:
    """The parts, passed in by keyword (:meth:`retrieval.Retrieval.open` builds them from
    settings; tests pass in-memory ones)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: ObjectStore,
        catalog: Catalog,
        index: SearchIndex,
        register: Register,
        access: AccessRegister,
        users: UserStore,
        tokens: TokenService,
        audit: AuditLog,
        keyring: ArchiveKeys,
        env_factory: Callable[[HoldSet], Environment],
    ) -> None:
        self.settings, self.store, self.catalog, self.index = settings, store, catalog, index
        self.register, self.access, self.users, self.tokens = register, access, users, tokens
        self.audit, self.keyring, self._env_factory = audit, keyring, env_factory
        self._head: bytes | None = None  # the catalog head the index was last synced to
        self.refusals: RefusalTally | None = None  # None: each refusal is its own event
        self._audit_lock = threading.Lock()
        self._deferred = threading.local()  # this thread's events held by audit_after

    @contextmanager
    def audit_after(self, now: Callable[[], datetime]) -> Iterator[None]:
        """Events this thread records in the block are appended and flushed as one segment when
        it ends, raise or return (a failed write raises, chained to the call's own error)."""
        held: list[AuditEvent] = []
        self._deferred.events = held
        try:
            yield
        finally:
            self._deferred.events = None
            if held:
                self._write(held, now())

    def write_refusals(self, now: datetime, *, closing: bool = False) -> int:
        """Write the refusals of a window that ended by ``now`` (``closing``: the open one too)
        as one segment; kept for the next try if the store refuses."""
        if self.refusals is None:
            return 0
        events = self.refusals.closed(now, everything=closing)
        try:
            self._write(events, now)
        except Exception:
            if not self._landed(events):  # a failed upload of a written segment is not a loss
                self.refusals.restore(events)
            raise
        return len(events)

    def _landed(self, events: Sequence[AuditEvent]) -> bool:
        """Whether the local chain ends with these events (written, only its upload failed)."""
        with self._audit_lock:
            tail = self.audit.show()[-len(events) :]
        return [e.to_json() for e in tail] == [e.to_json() for e in events]

    def _write(self, events: Sequence[AuditEvent], now: datetime) -> None:
        if not events:
            return
        with self._audit_lock:
            for event in events:
                self.audit.append(event)
            self.audit.flush(now=now)

    def chain_reports(self) -> list[tuple[str, ChainReport]]:
        """The three chains this service decides and writes by, checked local <-> bucket."""
        return [
            ("access register", self.access.verify()),
            ("retention register", self.register.verify()),
            ("audit log", self.audit.verify_chain()),
        ]

    def verify_chains(self) -> None:
        """Refuse to serve (AuditChainError) when a chain is broken: the access register says
        who may see what, and a forged or rolled-back one would grant it."""
        broken = [f"{name}: {r.reason}" for name, r in self.chain_reports() if not r.passed]
        if broken:
            raise AuditChainError(
                "refusing to serve: " + "; ".join(broken) + ". Run `emr-archive audit verify` "
                "and restore the local copy from the locked bucket copies"
            )

    @contextmanager
    def _audited(
        self,
        principal: Principal,
        action: str,
        now: datetime,
        entities: Sequence[tuple[str, str]],
        query: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield a detail dict the body fills in; append and flush one event either way."""
        detail: dict[str, Any] = dict(query or {})
        try:
            yield detail
        except Exception as e:  # refusals and failures alike: audited, then raised
            detail.setdefault("entities", entities)
            self._record(principal, action, now, detail=detail, error=e)
            raise
        detail.setdefault("entities", entities)
        self._record(principal, action, now, detail=detail)

    def _record(
        self,
        principal: Principal,
        action: str,
        now: datetime,
        *,
        detail: dict[str, Any] | None = None,
        error: Exception | None = None,
        role: str | None = None,
    ) -> None:
        detail = dict(detail or {})
        entities = tuple(detail.pop("entities", ()))
        reason = None if error is None else f"{type(error).__name__}: {error}"[:300]
        event = AuditEvent(
            actor=principal.username,
            role=role or principal.role.value,
            action=action,
            recorded=now,
            outcome="failure" if error else "success",
            entities=entities,
            reason=reason,
            detail={k: v if isinstance(v, int) else str(v) for k, v in detail.items()},
        )
        held: list[AuditEvent] | None = getattr(self._deferred, "events", None)
        if held is not None:
            held.append(event)
        else:
            self._write([event], now)
