"""Everything a retention command or the sweep needs, opened once from settings.

The CLI and the Prefect sweep both need the same store, catalog, register, audit log and policy;
building them here keeps the wiring in one place below both (flows may not import infra), and
:func:`lock_expectations` gives the verifier the register's view of holds and destructions
without the verification package importing retention.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from archive import wiring
from archive.audit import AuditLog
from archive.catalog import Catalog
from archive.core.settings import Settings
from archive.pipeline.runlock import RunLock
from archive.seal import ArchiveKeys
from archive.store import ObjectStore, S3ObjectStore
from retention.exclusion import exclude_runs
from retention.minutes import MinutesWriter
from retention.people import Actor
from retention.policy import RetentionPolicy, load_policy
from retention.proposals import Proposal, propose
from retention.register import Register, register_dir


@dataclass(frozen=True)
class RetentionParts:
    """Everything a retention command needs, built once from settings."""

    settings: Settings
    store: ObjectStore
    catalog: Catalog
    register: Register
    audit: AuditLog
    policy: RetentionPolicy

    @classmethod
    def open(cls, settings: Settings, *, store: ObjectStore | None = None) -> RetentionParts:
        store = store or wiring.open_store(settings)
        return cls(
            settings=settings,
            store=store,
            catalog=wiring.open_catalog(settings, create=True),
            register=Register.for_settings(settings, store),
            audit=AuditLog.for_settings(settings, store),
            policy=load_policy(settings.archive.retention_policy),
        )

    @property
    def tz(self) -> str:
        return self.settings.archive.timezone

    def keyring(self) -> ArchiveKeys:
        return wiring.open_keyring(self.settings)

    @contextmanager
    def runs_excluded(
        self,
        action: str,
        *,
        wait: timedelta = timedelta(0),
        report: Callable[[str], None] = lambda _line: None,
    ) -> Iterator[None]:
        """Hold the whole-export run lock and lease while ``action`` changes locks, so no
        archive run writes locks meanwhile (:mod:`retention.exclusion`)."""
        now = datetime.now(UTC)
        run_id = f"{action.replace(' ', '-')}-{now:%Y%m%dT%H%M%SZ}"  # shown to a refused run
        keys = self.keyring()
        lock = exclude_runs(
            lambda: RunLock.for_run(self.settings, run_id, now, None, keys=keys),
            action=action,
            wait=wait,
            report=report,
        )
        try:
            yield
        finally:
            lock.release()

    def minutes_writer(self) -> MinutesWriter:
        return MinutesWriter(
            settings=self.settings, store=self.store, keys=self.keyring(), policy=self.policy
        )

    def propose(self, *, by: Actor, now: datetime) -> Proposal | None:
        return propose(
            self.catalog.rows(),
            self.register,
            self.audit,
            policy=self.policy,
            by=by,
            now=now,
            directory=register_dir(self.settings) / "proposals",
        )


def lock_expectations(settings: Settings) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """What the retention register says the lock state must be, for verification: the
    encounters under an active legal hold, and the (object key, version) pairs destroyed after
    their retention. No register yet: no holds, nothing destroyed (so any hold found in the store
    is reported)."""
    if not register_dir(settings).is_dir():
        return frozenset(), frozenset()
    register = Register.for_settings(
        settings, S3ObjectStore.from_settings(settings, read_only=True)
    )
    return frozenset(register.held_encounters()), frozenset(register.destroyed_versions())
