"""An in-memory retention world for unit tests (no tests here): eight catalogued records on the
memory store, the register and audit log sealed as in production, people with their roles, and
a pinned clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.audit import AuditLog
from archive.catalog import Catalog, CatalogRow
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring
from archive.store import SealedStore
from retention.candidates import Item
from retention.disposition import Approval, Outcome, Proposal, approve, propose
from retention.errors import RetentionError
from retention.people import Actor
from retention.policy import load_policy
from retention.register import Register
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # pinned; the stored locks below are long past
PAST = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE = datetime(2090, 1, 1, tzinfo=UTC)
DISCHARGED = datetime(2009, 6, 1, 3, tzinfo=UTC)
POLICY = load_policy()


@dataclass
class World:
    store: MemoryStore
    catalog: Catalog
    register: Register
    audit: AuditLog
    tmp: Path
    deletes: list[str] = field(default_factory=list)

    def rows(self) -> Any:
        return self.catalog.rows()


def _row(eid: str, patient: str, cls: str, until: datetime, store: MemoryStore) -> CatalogRow:
    key = f"records/v1/01001/00/{eid}"
    put = store.put_locked(key, eid.encode(), retain_until=until)
    return CatalogRow(
        encounter_id=eid,
        patient_pseudonym="p1_" + patient * 64,
        facility="01001",
        admitted_at=DISCHARGED - timedelta(days=2),
        discharged_at=DISCHARGED,
        retention_class=cls,
        retain_until=until,
        bucket="memory",
        object_key=key,
        version_id=put.version_id,
        pdf_sha256="a" * 64,
        data_sha256="b" * 64,
        sealed_sha256=put.sha256,
        sealed_size=put.size,
        signer_cert_sha256="c" * 64,
        signed_at=DISCHARGED,
        kek_id="k",
        kek_version=1,
        format_version=1,
        run_id="r1",
    )


def build_world(tmp_path: Path) -> World:
    store = MemoryStore()
    rows = [
        _row("E-OLD", "1", "ordinary", PAST, store),
        _row("E-NEW", "2", "ordinary", FUTURE, store),
        _row("E-LINKED", "3", "ordinary", PAST, store),
        _row("E-DEATH", "3", "death", FUTURE, store),
        _row("E-SIB-1", "4", "ordinary", PAST, store),  # same patient, same class: not linked
        _row("E-SIB-2", "4", "ordinary", PAST, store),
        _row("E-MENTAL-GONE", "5", "ordinary", PAST, store),
        _row("E-MENTAL", "5", "mental", PAST, store),  # longer class, but expired too
    ]
    # Metadata goes to the bucket sealed, as in production (Register/AuditLog.for_settings).
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    sealed = SealedStore(store, keys=keys, settings=SealSettings())
    catalog = Catalog.open(tmp_path / "catalog", create=True)
    catalog.append(rows, run_id="r1", now=NOW, store=sealed, retain_until=FUTURE)
    register = Register.open(tmp_path / "retention", store, key=keys.chain_key(), meta_store=sealed)
    return World(
        store,
        catalog,
        register,
        AuditLog.open(tmp_path / "audit", sealed, key=keys.chain_key()),
        tmp_path,
    )


LAN = Actor("lan", "records-officer")
THU = Actor("thu", "records-officer")
HEAD = Actor("director.binh", "facility-head")
DELEGATE = Actor("deputy.hoa", "facility-head-delegate")


def propose_as(world: World, by: Actor) -> Proposal:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by=by,
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None
    return proposal


class StubMinutes:
    """A minutes writer for the pure tests: stores nothing; ``fail_ready`` or ``fail_write``
    make it raise where the real one would (a token missing; the TSA down)."""

    def __init__(self, *, fail_ready: str | None = None, fail_write: str | None = None) -> None:
        self.fail_ready, self.fail_write = fail_ready, fail_write
        self.readied = 0

    def ready(self) -> None:
        self.readied += 1
        if self.fail_ready is not None:
            raise RetentionError(self.fail_ready)

    def __call__(
        self, proposal: Proposal, items: tuple[Item, ...], approval: Approval, at: datetime
    ) -> dict[str, str]:
        if self.fail_write is not None:
            raise RetentionError(self.fail_write)
        return {"key": "retention/minutes/x.pdf", "version_id": "v", "pdf_sha256": "0" * 64}


def approve_as(
    world: World, proposal: Proposal, by: Actor, minutes: StubMinutes | None = None
) -> Outcome:
    return approve(
        proposal.proposal_id,
        by=by,
        catalog_rows=world.rows(),
        register=world.register,
        audit=world.audit,
        policy=POLICY,
        write_minutes=minutes or StubMinutes(),
        now=NOW,
    )
