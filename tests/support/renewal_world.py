"""Nightly evidence trees on the in-memory store, stamped by in-process TSAs: what the renewal
unit tests start from (the integration tests use a real nightly run and the real TSA)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.core.settings import SealSettings
from archive.evidence import TsaTrust
from archive.pipeline.evidence_stage import EvidenceStage
from archive.pipeline.evidence_state import EvidenceState, Member
from archive.seal import LocalKeyring
from archive.store import SealedStore, evidence_key
from tests.support.evidence import LocalTsa, local_tsa
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TSA1 = local_tsa(NOW - timedelta(days=365), NOW + timedelta(days=200), "TSA one")
TSA2 = local_tsa(NOW - timedelta(days=1), NOW + timedelta(days=3650), "TSA two")
UNTIL = datetime(2056, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(days=300)  # TSA1's certificate has ended
TRUST = TsaTrust([TSA1.root, TSA2.root])


def world(
    tmp_path: Path, trees: int, *, records: bool = False
) -> tuple[SealedStore, dict[tuple[str, str], bytes]]:
    """``trees`` nightly trees of three records each, stamped by TSA1 at NOW. ``records``: the
    record objects are stored too (locked until their members' date), under the version ids
    the store gives them, for the tests that extend their locks (retention upgrades)."""
    sealed = SealedStore(
        MemoryStore(),
        keys=LocalKeyring.create(tmp_path / "keys", kek_id="k"),
        settings=SealSettings(),
    )
    documents: dict[tuple[str, str], bytes] = {}
    nightly(sealed, tmp_path, TSA1, NOW, trees=trees, documents=documents, records=records)
    return sealed, documents


def nightly(
    sealed: SealedStore,
    tmp_path: Path,
    tsa: LocalTsa,
    at: datetime,
    *,
    trees: int,
    documents: dict[tuple[str, str], bytes],
    records: bool = False,
) -> None:
    stage = EvidenceStage(
        EvidenceState(tmp_path / "state", sealed),
        sealed,
        timestamper=lambda root: tsa.stamp(root, "sha256", at),
        check=TsaTrust([tsa.root]),
        cache=tmp_path / "cache",
    )
    first = len(documents) // 3
    for t in range(first, first + trees):
        members = []
        for i in range(3):
            pdf, key = f"tree {t} pdf {i}".encode(), f"records/v1/BV01/ab/r1{t:019x}{i:019x}"
            until, version = UNTIL + timedelta(days=t), f"v{t}"
            if records:
                version = sealed.inner.put_locked(key, pdf, retain_until=until).version_id
            documents[(key, version)] = pdf
            ek = evidence_key(object_key=key, version_id=version)
            members.append(Member(ek, hashlib.sha256(pdf).hexdigest(), until))
        stage.hold(f"run{t}", members)
        assert stage.complete(f"run{t}", now=at, extra=lambda _r: []).written == 3
