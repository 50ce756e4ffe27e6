"""Evidence records at ingest, on the real stack: one tree and one timestamp from the development
TSA per run, one locked RFC 4998 record per archived PDF (and per catalog manifest), validated
against the stored documents; a TSA outage leaves them pending for the next run; kill -9 at each
step of the stage, then a rerun, completes them without a duplicate or a second timestamp."""

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
from asn1crypto import cms, x509

from archive.catalog import MANIFESTS_DIR, Catalog, manifest_lock, table_to_rows
from archive.evidence import (
    DataObject,
    TsaTrust,
    WeakAlgorithms,
    new_record,
    read_record,
    validate_evidence,
)
from archive.pipeline.evidence_state import DONE, MANIFESTS, PENDING, TREES
from archive.pipeline.evidence_wiring import local_dir, tsa_timestamper
from archive.seal import ObjectIdentity, open_keys, unseal
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.store import COMPLIANCE, S3ObjectStore, SealedStore, evidence_key
from archive.store.naming import EVIDENCE_RECORDS_PREFIX
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.evidence_crash import child_env
from tests.support.nightly import DAY, Export, make_export
from tests.support.oracles import ers

pytestmark = pytest.mark.integration

DEAD_TSA = "http://127.0.0.1:9/tsa"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("export"), encounters=24, seed=7)


def _run(settings: Settings, export: Export, *, tsa: str | None = None) -> object:
    from archive.pipeline import ArchiveRun, RunOptions

    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC)
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        if tsa is not None:
            run.evidence_timestamper = tsa_timestamper(
                tsa, RetryPolicy(attempts=1), roots=_tsa_roots(settings)
            )
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()


def _tsa_roots(settings: Settings) -> list[x509.Certificate]:
    return load_trust_roots(SignerConfig.from_settings(settings).tsa_trust_roots)


def _versions(store: S3ObjectStore, prefix: str) -> Counter[str]:
    return Counter(v.key for v in store.list_versions(prefix) if not v.is_delete_marker)


def _check_all_evidence(settings: Settings) -> set[bytes]:
    """Every catalogued record (and manifest) has one locked evidence record that proves the
    stored PDF (unsealed from the bucket) under the TSA roots; returns the tokens used."""
    store = S3ObjectStore.from_settings(settings)
    keys = open_keys(settings)
    sealed = SealedStore.for_settings(settings, store, keys=keys)
    roots = load_trust_roots(SignerConfig.from_settings(settings).tsa_trust_roots)
    check, now, weak = TsaTrust(roots), datetime.now(UTC), WeakAlgorithms()
    catalog = Catalog.open(settings.catalog_dir)
    tokens = set()
    documents: list[tuple[str, bytes, datetime]] = []
    for row in catalog.rows().to_pylist():
        identity = ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"])
        pdf = unseal(
            store.get(row["object_key"], version_id=row["version_id"]),
            identity=identity,
            keys=keys,
            settings=settings.seal,
        )
        key = evidence_key(object_key=row["object_key"], version_id=row["version_id"])
        documents.append((key, pdf, row["retain_until"]))
    for info in catalog.manifests:
        data = (settings.catalog_dir / MANIFESTS_DIR / info.name).read_bytes()
        until = manifest_lock(settings, info.created_at)
        documents.append((f"{MANIFESTS}{info.name}.ers", data, until))
    counts = _versions(store, EVIDENCE_RECORDS_PREFIX) + _versions(store, MANIFESTS)
    assert sorted(counts) == sorted(k for k, _, _ in documents)
    assert set(counts.values()) == {1}  # one version each: nothing written twice
    for key, document, retain_until in documents:
        head = sealed.latest(key)
        assert head is not None
        assert head.lock.mode == COMPLIANCE
        assert head.lock.retain_until is not None  # the document's own lock, to the second
        assert timedelta(0) <= head.lock.retain_until - retain_until < timedelta(seconds=1)
        der = sealed.get(key, version_id=head.version_id)
        verdict = validate_evidence(
            der, [DataObject(data=document)], as_of=now, check_timestamp=check, weak=weak
        )
        assert verdict.ok, verdict.detail
        wrong = validate_evidence(
            der, [DataObject(data=document + b" ")], as_of=now, check_timestamp=check, weak=weak
        )
        assert wrong.code == "evidence.not_covered"
        tokens.add(read_record(der).chains[0][0].token_der)
    return tokens


def test_a_run_gives_every_record_a_locked_evidence_record_under_one_timestamp(
    settings: Settings, export: Export
) -> None:
    summary = _run(settings, export)
    n = len(export.summary.in_window)
    assert summary.archived == n  # type: ignore[attr-defined]
    assert summary.evidence_written == n + 1  # type: ignore[attr-defined]  # + the manifest
    assert summary.evidence_pending == 0  # type: ignore[attr-defined]
    assert summary.evidence_timestamps == 1  # type: ignore[attr-defined]
    assert len(_check_all_evidence(settings)) == 1  # one token over the whole run

    # The local cache is a cache: damaging it changes nothing that is verified (the locked copy
    # is what counts) and a rerun neither rewrites nor re-timestamps anything.
    cached = sorted((local_dir(settings) / "cache").rglob("*.ers"))
    assert len(cached) == n + 1
    cached[0].write_bytes(b"\x30\x00")
    again = _run(settings, export)
    assert again.evidence_written == again.evidence_timestamps == 0  # type: ignore[attr-defined]
    _check_all_evidence(settings)


def test_tsa_down_leaves_evidence_pending_and_the_next_run_completes_it(
    settings: Settings, export: Export
) -> None:
    n = len(export.summary.in_window)
    down = _run(settings, export, tsa=DEAD_TSA)
    assert down.archived == n  # type: ignore[attr-defined]  # the records are archived anyway
    assert down.evidence_pending == n + 1  # type: ignore[attr-defined]  # counted, not silent
    assert down.evidence_written == 0  # type: ignore[attr-defined]
    store = S3ObjectStore.from_settings(settings)
    assert len(_versions(store, PENDING)) == 1  # the promise is in the bucket too
    assert not _versions(store, EVIDENCE_RECORDS_PREFIX)

    back = _run(settings, export)
    assert back.archived == 0  # type: ignore[attr-defined]
    assert back.evidence_written == n + 1  # type: ignore[attr-defined]
    assert back.evidence_pending == 0  # type: ignore[attr-defined]
    assert back.evidence_timestamps == 1  # type: ignore[attr-defined]
    assert len(_check_all_evidence(settings)) == 1
    assert not list((local_dir(settings) / "pending").glob("*.json"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("step", "nth", "timestamps_on_rerun"),
    [("tree-built", 1, 1), ("timestamped", 1, 0), ("record-written", 3, 0)],
)
def test_killed_in_the_evidence_stage_then_rerun_completes_once(
    settings: Settings, export: Export, step: str, nth: int, timestamps_on_rerun: int
) -> None:
    argv = [
        sys.executable,
        "-m",
        "tests.support.evidence_crash",
        str(export.path),
        DAY.isoformat(),
        step,
        str(nth),
    ]
    child = subprocess.Popen(
        argv,
        env=child_env(settings),
        start_new_session=True,
        cwd=Path.cwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = child.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # any worker left behind
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    store = S3ObjectStore.from_settings(settings)
    trees_before = len(_versions(store, TREES))

    summary = _run(settings, export)
    n = len(export.summary.in_window)
    assert summary.archived == 0  # type: ignore[attr-defined]
    assert summary.evidence_timestamps == timestamps_on_rerun  # type: ignore[attr-defined]
    assert summary.evidence_pending == 0  # type: ignore[attr-defined]
    assert len(_versions(store, TREES)) == trees_before + timestamps_on_rerun == 1
    assert set(_versions(store, DONE).values()) == {1}
    assert len(_check_all_evidence(settings)) == 1
    if step == "record-written":  # the rest of the records (if any), with the saved token
        assert summary.evidence_written <= n + 1 - nth  # type: ignore[attr-defined]
    else:
        assert summary.evidence_written == n + 1  # type: ignore[attr-defined]


def _evidence_verdicts(settings: Settings, *, grace_days: int, now: datetime) -> Counter[str]:
    """The ``evidence`` check's reason codes over the catalog (verification's own code path)."""
    from verification.checks import EVIDENCE, OBJECT, UNSEAL
    from verification.config import HoldSet, VerificationSettings
    from verification.verifier import Verifier
    from verification.worker import environment

    vsettings = VerificationSettings(evidence_grace_days=grace_days, workers=1)
    env = environment(settings, vsettings, HoldSet())
    verifier = Verifier.create(checks=(OBJECT, UNSEAL, EVIDENCE), env=env)
    codes: Counter[str] = Counter()
    for row in table_to_rows(Catalog.open(settings.catalog_dir).rows()):
        result = verifier.verify(row, now=now)
        codes.update(c.reason_code for c in result.checks if c.check == "evidence")
    return codes


def test_verification_reads_the_locked_record_and_reports_pending_then_missing(
    settings: Settings, export: Export
) -> None:
    n = len(export.summary.in_window)
    now = datetime.now(UTC)
    _run(settings, export, tsa=DEAD_TSA)
    assert _evidence_verdicts(settings, grace_days=7, now=now) == {"evidence.pending": n}
    late = now + timedelta(days=8)
    assert _evidence_verdicts(settings, grace_days=7, now=late) == {"evidence.missing": n}

    # A wrong writer puts another document's evidence (a real token) at one record's key
    # before the next run: that run counts the conflict, completes the others, and
    # verification reports the record as not covered.
    victim = table_to_rows(Catalog.open(settings.catalog_dir).rows())[0]
    victim_key = evidence_key(object_key=victim.object_key, version_id=victim.version_id)
    other = hashlib.sha256(b"another document").digest()
    token = tsa_timestamper(settings.tsa_url, RetryPolicy(), roots=_tsa_roots(settings))(other)
    store = SealedStore.for_settings(settings, S3ObjectStore.from_settings(settings))
    store.put_locked(
        victim_key,
        new_record("sha256", ((other,),), token).dump(),
        retain_until=victim.retain_until,
    )
    back = _run(settings, export)
    assert back.evidence_written == n  # type: ignore[attr-defined]  # n - 1 records + manifest
    assert back.failed == {"evidence.conflict": 1}  # type: ignore[attr-defined]
    now = datetime.now(UTC)  # the records exist from their timestamp on, not before
    assert _evidence_verdicts(settings, grace_days=7, now=now) == {
        "evidence.ok": n - 1,
        "evidence.not_covered": 1,
    }

    # The local cache is not what verification reads: overwrite every cached record with the
    # victim's wrong one, the verdicts stay those of the locked copies.
    cache = local_dir(settings) / "cache"
    wrong = (cache / victim_key).read_bytes()
    for cached in cache.rglob("*.ers"):
        cached.write_bytes(wrong)
    assert _evidence_verdicts(settings, grace_days=7, now=now)["evidence.ok"] == n - 1


def test_the_nightly_evidence_records_pass_bouncy_castle_and_eu_dss(
    settings: Settings, export: Export, tmp_path: Path
) -> None:
    """What the run stores, not what a test builds: its token carries the TSA's revocation data,
    so EU DSS (offline) and Bouncy Castle accept each record for the PDF unsealed from the bucket
    (without that data DSS leaves them INDETERMINATE)."""
    _run(settings, export)
    store = S3ObjectStore.from_settings(settings)
    keys = open_keys(settings)
    sealed = SealedStore.for_settings(settings, store, keys=keys)
    pairs = []
    for n, row in enumerate(Catalog.open(settings.catalog_dir).rows().to_pylist()[:3]):
        identity = ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"])
        pdf = unseal(
            store.get(row["object_key"], version_id=row["version_id"]),
            identity=identity,
            keys=keys,
            settings=settings.seal,
        )
        key = evidence_key(object_key=row["object_key"], version_id=row["version_id"])
        head = sealed.latest(key)
        assert head is not None
        der = sealed.get(key, version_id=head.version_id)
        token = cms.ContentInfo.load(read_record(der).chains[0][0].token_der)
        assert len(token["content"]["crls"]) > 0  # the TSA path's OCSP responses / CRLs
        doc, er = tmp_path / f"{n}.pdf", tmp_path / f"{n}.ers"
        doc.write_bytes(pdf)
        er.write_bytes(der)
        pairs.append((doc, er))
    verdicts = ers(pairs, trust_anchor=settings.pki_dir / "trust-root.pem")
    for verdict in verdicts.values():
        bc, dss = verdict.bc, verdict.dss
        assert (bc.present, bc.chained, bc.trusted) == (True, True, True), bc
        assert (dss.error, dss.indication) == (None, "PASSED"), dss
        assert (dss.covered, dss.structurally_valid) == (True, True), dss
