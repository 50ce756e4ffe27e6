"""Timestamp renewal on the real stack (SeaweedFS, the development TSA): one TSA call renews every
due tree; a renewed record, read through ``current_evidence``, passes Bouncy Castle, EU DSS and
verification for the real PDF; the plan writes nothing; a rerun renews nothing twice; kill -9
mid-renewal then a rerun completes with one object per tree; a renewal object changed or swapped
by someone holding the keys breaks the chain (``evidence.chain_broken``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.audit import AuditLog
from archive.catalog import Catalog, table_to_rows
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_renewal_state import ATS, BATCHES, RENEWED
from archive.pipeline.evidence_state import Member
from archive.pipeline.evidence_wiring import open_stage, rehash_evidence, renew_evidence
from archive.seal import ObjectIdentity, open_keys, seal, unseal
from archive.store import S3ObjectStore, SealedStore, evidence_key
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.evidence_crash import child_env
from tests.support.nightly import Export, make_export
from tests.support.oracles import ers

pytestmark = pytest.mark.integration

HORIZON = 3650  # the development TSA's certificate ends within ten years: every tree is due


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(
        tmp_path_factory.mktemp("export"), encounters=12, seed=5
    )  # three in the window


def _renewing(settings: Settings) -> Settings:
    evidence = settings.evidence.model_copy(update={"renew_before_days": HORIZON})
    return settings.model_copy(update={"evidence": evidence})


def _world(settings: Settings, export: Export, *, synthetic: int) -> None:
    """One nightly run over ``export`` (a tree over its real PDFs) and ``synthetic`` more trees
    of two made-up documents each (their own token each, as other nights would have)."""
    from archive.pipeline import ArchiveRun, RunOptions

    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC)
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        assert run.finish().evidence_timestamps == 1
    store = S3ObjectStore.from_settings(settings)
    stage = open_stage(settings, store, open_keys(settings))
    until = datetime.now(UTC) + timedelta(days=3650)
    for n in range(synthetic):
        members = [
            Member(
                evidence_key(object_key=f"records/v1/SYN/00/r1{n:019x}{i:019x}", version_id="v1"),
                hashlib.sha256(f"synthetic {n} {i}".encode()).hexdigest(),
                until,
            )
            for i in range(2)
        ]
        stage.hold(f"synthetic-{n}", members)
        done = stage.complete(f"synthetic-{n}", now=datetime.now(UTC), extra=lambda _r: [])
        assert done.written == 2


def _versions(settings: Settings, prefix: str = "") -> Counter[str]:
    store = S3ObjectStore.from_settings(settings)
    return Counter(v.key for v in store.list_versions(prefix) if not v.is_delete_marker)


def _verdicts(settings: Settings) -> Counter[str]:
    """Verification's own ``evidence`` check over the catalogued records."""
    from verification.checks import EVIDENCE, OBJECT, UNSEAL
    from verification.config import HoldSet, VerificationSettings
    from verification.verifier import Verifier
    from verification.worker import environment

    env = environment(settings, VerificationSettings(workers=1), HoldSet())
    verifier = Verifier.create(checks=(OBJECT, UNSEAL, EVIDENCE), env=env)
    codes: Counter[str] = Counter()
    for row in table_to_rows(Catalog.open(settings.catalog_dir).rows()):
        result = verifier.verify(row, now=datetime.now(UTC))
        codes.update(c.reason_code for c in result.checks if c.check == "evidence")
    return codes


def _kill_mid_renewal(settings: Settings) -> None:
    """A renewal in a child process, SIGKILLed after its token is saved and one ATS object of
    three is written (the unit tests kill it at every step)."""
    env = {**child_env(settings), "EMR_ARCHIVE_EVIDENCE__RENEW_BEFORE_DAYS": str(HORIZON)}
    argv = [sys.executable, "-m", "tests.support.renewal_crash", "ats-written", "2"]
    child = subprocess.Popen(
        argv, env=env, start_new_session=True, cwd=Path.cwd(), stderr=subprocess.PIPE
    )
    try:
        _, err = child.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert len(_versions(settings, BATCHES)) == 1  # the token was saved before any object
    assert not _versions(settings, RENEWED)


@pytest.mark.slow
def test_renewal_plan_kill_rerun_oracles_verification_and_forged_renewals(
    settings: Settings, export: Export, tmp_path: Path
) -> None:
    _world(settings, export, synthetic=2)
    renewing = _renewing(settings)
    before = _versions(settings)
    plan = renew_evidence(renewing, now=datetime.now(UTC), plan_only=True)
    assert (plan.plan.trees, plan.plan.tokens, plan.plan.tsa_calls) == (3, 3, 1)
    assert plan.plan.reasons() == {"evidence.tsa_expiring": 3}
    assert plan.timestamps == 0
    assert _versions(settings) == before  # no object, no audit segment: nothing written

    _kill_mid_renewal(settings)
    # the rerun finishes the interrupted renewal whatever the horizon says now
    out = renew_evidence(settings, now=datetime.now(UTC))
    assert (out.resumed, out.timestamps, out.tokens, out.trees) == (1, 0, 3, 3)  # saved token
    assert out.written <= 2  # at least one object was written before the kill
    assert out.failures() == {}
    assert set(_versions(settings, ATS).values()) == {1}
    assert len(_versions(settings, ATS)) == 3  # one object per tree, none per record
    assert len(_versions(settings, RENEWED)) == 1

    # A rerun renews nothing twice: with the default horizon nothing is due; with the long one
    # the renewal token is due again, but the TSA still stamps with the same certificate, and
    # renewing would gain nothing: said loudly, without a TSA call or a write.
    again = renew_evidence(settings, now=datetime.now(UTC))
    assert (again.timestamps, again.resumed, again.written, again.failures()) == (0, 0, 0, {})
    stuck = renew_evidence(renewing, now=datetime.now(UTC))
    assert (stuck.timestamps, stuck.written) == (0, 0)
    assert stuck.failures() == {"evidence.no_newer_tsa": 1}
    assert len(_versions(settings, ATS)) == 3
    store = S3ObjectStore.from_settings(settings)
    events = AuditLog.for_settings(settings, store).show(action="evidence.renew")
    assert [e.outcome for e in events][:3] == ["success", "success", "failure"]
    assert events[0].detail["resumed"] == 1

    # Hash-tree renewal to SHA-512: every catalogued PDF (and the manifest) re-hashed into a
    # new chain after its renewed one, under one more TSA call.
    rehashed = rehash_evidence(settings, algorithm="sha512", now=datetime.now(UTC))
    rows = table_to_rows(Catalog.open(settings.catalog_dir).rows())
    assert (rehashed.renewed, rehashed.timestamps, rehashed.written) == (len(rows) + 1, 1, 4)
    assert rehashed.failures() == {}
    assert rehash_evidence(settings, algorithm="sha512", now=datetime.now(UTC)).renewed == 0

    keys = open_keys(settings)
    sealed = SealedStore.for_settings(settings, store, keys=keys)
    pairs = []
    for n, row in enumerate(rows[:2]):
        current = current_evidence(sealed, object_key=row.object_key, version_id=row.version_id)
        assert current is not None
        assert current.renewals == 2  # a timestamp renewal, then a new chain
        assert current.locked_until(row.retain_until) is None
        pdf = unseal(
            store.get(row.object_key, version_id=row.version_id),
            identity=ObjectIdentity(row.bucket, row.object_key, row.encounter_id),
            keys=keys,
            settings=settings.seal,
        )
        doc, er = tmp_path / f"{n}.pdf", tmp_path / f"{n}.ers"
        doc.write_bytes(pdf)
        er.write_bytes(current.der)
        pairs.append((doc, er))
    for verdict in ers(pairs, trust_anchor=settings.pki_dir / "trust-root.pem").values():
        bc, dss = verdict.bc, verdict.dss
        assert (bc.present, bc.chained, bc.trusted, bc.chains, bc.tokens) == (
            True,
            True,
            True,
            2,
            3,
        ), bc
        assert (dss.error, dss.indication) == (None, "PASSED"), dss
        assert (dss.covered, dss.structurally_valid) == (True, True), dss
    assert _verdicts(settings) == {"evidence.ok": len(rows)}

    # Someone with the keys and write access adds a locked version at the catalogued records'
    # renewal key: another tree's renewal (not a sibling's), then the genuine one with a byte
    # of its reduced tree changed. Verification reads the newest and finds the chain broken.
    current = current_evidence(sealed, object_key=rows[0].object_key, version_id=rows[0].version_id)
    assert current is not None
    victim = current.parts[1]
    genuine = sealed.get(victim.key, version_id=victim.version_id)
    others = set()
    for key in _versions(settings, ATS):
        head = sealed.latest(key)
        assert head is not None
        others.add(sealed.get(key, version_id=head.version_id))
    _forge(settings, victim.key, next(o for o in others if o != genuine))
    assert _verdicts(settings) == {"evidence.chain_broken": len(rows)}
    flipped = bytearray(genuine)
    flipped[12] ^= 0x01  # inside the reduced tree's first hash
    _forge(settings, victim.key, bytes(flipped))
    assert _verdicts(settings) == {"evidence.chain_broken": len(rows)}


def _forge(settings: Settings, key: str, plaintext: bytes) -> None:
    """Someone holding the keys and write access adds a new, locked version at ``key``."""
    store = S3ObjectStore.from_settings(settings)
    sealed = SealedStore.for_settings(settings, store)
    data = seal(
        plaintext, identity=sealed.identity(key), keys=open_keys(settings), settings=settings.seal
    )
    store.client.put_object(
        Bucket=store.bucket,
        Key=key,
        Body=data,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=36500),
    )
