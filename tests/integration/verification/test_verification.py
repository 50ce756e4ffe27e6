"""Verification on the real stack: a clean archive passes, and every kind of damage is found.

Each test archives a small window of its own (its own bucket and catalog), damages it in one way
and runs the verifier over everything. It asserts the reason code that must be reported and that
nothing else is: every other record passes, and every archive-wide check passes unless the damage
is archive-wide. Checks that depend on a damaged stage report ``<check>.not_reached``
(indeterminate), never a second finding.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import BUCKET_PREFIX, Catalog, CatalogRow, table_to_rows
from archive.core.errors import StoreError
from archive.store import S3ObjectStore, SealedStore
from infra.settings import AppSettings as Settings
from tests.support.memstore import MemoryStore
from tests.support.nightly import Export, make_export, run_once
from tests.support.verification import flip_on_disk
from verification.config import HoldSet, VerificationSettings
from verification.report import Summary
from verification.results import RecordResult, Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration

ENCOUNTERS = 24


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("verify-export"), encounters=ENCOUNTERS, seed=23)


@pytest.fixture
def archived(settings: Settings, export: Export) -> Settings:
    summary = run_once(settings, export)
    assert summary.archived > 10
    assert summary.failed == {}
    return settings


@pytest.fixture
def vsettings(tmp_path: Path) -> VerificationSettings:
    return VerificationSettings(output_dir=tmp_path / "verification", workers=1)


def verify(
    settings: Settings,
    vsettings: VerificationSettings,
    *,
    holds: HoldSet | None = None,
    mode: Mode = Mode.FULL,
) -> Summary:
    selection = Selection(
        mode=mode,
        share=0.2 if mode is Mode.SAMPLE else None,
        seed=1 if mode is Mode.SAMPLE else None,
    )
    plan = RunPlan.create(settings, vsettings, selection=selection, now=datetime.now(UTC))
    with VerificationRun.start(settings, vsettings, plan, holds=holds, keep_results=True) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        return run.finish()


def rows(settings: Settings) -> list[CatalogRow]:
    return table_to_rows(Catalog.open(settings.catalog_dir).rows())


def problems(summary: Summary) -> dict[str, set[str]]:
    """encounter id (or the archive-wide check's name) -> reason codes of real findings."""
    found: dict[str, set[str]] = {}
    for r in summary.results:
        codes = {c.reason_code for c in r.problems if not c.reason_code.endswith(".not_reached")}
        if codes or r.status is not Status.PASSED:
            found[r.encounter_id] = codes
    for c in summary.archive_checks:
        if c.status is not Status.PASSED:
            found[c.check] = {c.reason_code}
    for f in summary.findings:
        found.setdefault("inventory", set()).add(f.reason_code)
    return found


def result_of(summary: Summary, encounter_id: str) -> RecordResult:
    return next(r for r in summary.results if r.encounter_id == encounter_id)


# --- a clean archive ---------------------------------------------------------------------------


def test_a_clean_archive_passes_every_check_now_and_as_of_dates_ahead(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    summary = verify(archived, vsettings)
    assert summary.status is Status.PASSED, problems(summary)
    assert len(summary.results) == len(rows(archived))
    assert {c.check for r in summary.results for c in r.checks} == {
        "object",
        "unseal",
        "signature",
        "pdfa",
        "embedded-data",
        "conversion-mark",
        "lock",
        "evidence",
    }
    assert summary.report_path is not None
    assert summary.report_path.is_file()
    assert summary.log_path is not None
    assert summary.log_path.is_file()
    from archive.audit import AuditLog

    events = [
        e
        for e in AuditLog.for_settings(archived, S3ObjectStore.from_settings(archived)).show(
            action="verify.run"
        )
    ]
    assert events, "the verification run was not audited"
    assert events[-1].outcome == "success"
    _as_of_a_date_the_signature_stands_on_the_evidence_until_its_tsa_lapses(archived, vsettings)


# --- the objects --------------------------------------------------------------------------------


def _few_retries(settings: Settings) -> Settings:
    # A damaged needle makes SeaweedFS answer 500 to every read, after ~13 s each here; botocore's
    # 8 attempts would take minutes per read, and one attempt shows the damage.
    return settings.model_copy(update={"s3": settings.s3.model_copy(update={"max_attempts": 1})})


def test_bit_rot_below_the_s3_api_is_found(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    """SeaweedFS keeps a CRC per needle and refuses to serve a changed one (500 InternalError):
    the version is listed, its stored checksum still matches, but it cannot be read. A store
    that serves the changed bytes is caught by hashing them (unit test with the memory store)."""
    settings = _few_retries(archived)
    victim = rows(settings)[3]
    store = S3ObjectStore.from_settings(settings)
    sealed = store.get(victim.object_key, version_id=victim.version_id)
    flip_on_disk(settings, sealed)
    with pytest.raises(StoreError, match="InternalError"):
        store.get(victim.object_key, version_id=victim.version_id)  # not a cached copy
    head = store.head(victim.object_key, version_id=victim.version_id)
    assert head.sha256 == victim.sealed_sha256  # the metadata did not notice
    # Verification's own retry setting reaches its reads (the archive's S3 section allows 8).
    summary = verify(archived, vsettings.model_copy(update={"read_attempts": 1}))
    assert problems(summary) == {victim.encounter_id: {"object.unreadable"}}
    assert summary.status is Status.FAILED


def test_a_new_version_written_over_a_locked_key_is_found(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    victim = rows(archived)[5]
    store = S3ObjectStore.from_settings(archived)
    store.client.put_object(Bucket=store.bucket, Key=victim.object_key, Body=b"a newer version")
    latest = store.latest(victim.object_key)
    assert latest is not None
    assert latest.version_id != victim.version_id
    summary = verify(archived, vsettings)
    assert problems(summary) == {"inventory": {"inventory.newer_version"}}
    [finding] = summary.findings
    assert (finding.object_key, finding.version_id) == (victim.object_key, latest.version_id)


def test_an_orphan_object_is_found(archived: Settings, vsettings: VerificationSettings) -> None:
    store = S3ObjectStore.from_settings(archived)
    orphan = "records/v1/17011/ab/r1" + "ab" * 19
    store.client.put_object(Bucket=store.bucket, Key=orphan, Body=b"nobody catalogued me")
    summary = verify(archived, vsettings)
    assert problems(summary) == {"inventory": {"inventory.orphan"}}
    assert [f.object_key for f in summary.findings] == [orphan]


def test_legal_hold_differing_from_the_expected_is_found(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    victim = rows(archived)[2]
    store = S3ObjectStore.from_settings(archived)
    store.set_legal_hold(victim.object_key, version_id=victim.version_id, on=True)
    summary = verify(archived, vsettings)
    assert problems(summary) == {victim.encounter_id: {"lock.hold_mismatch"}}
    expected = verify(archived, vsettings, holds=HoldSet.of([victim.encounter_id]))
    assert expected.status is Status.PASSED, problems(expected)


# --- catalogs that say something else than the bucket ------------------------------------------


def _with_catalog(settings: Settings, directory: Path) -> Settings:
    catalog = settings.catalog.model_copy(update={"catalog_dir": directory})
    return settings.model_copy(update={"catalog": catalog})


def _write_catalog(directory: Path, catalog_rows: list[CatalogRow], run_id: str) -> None:
    """A catalog written with the Catalog API whose copies go to a throwaway in-memory bucket:
    the only way to make one disagree with the archive (the real bucket refuses it)."""
    Catalog.open(directory, create=True).append(
        catalog_rows,
        run_id=run_id,
        now=datetime.now(UTC),
        store=MemoryStore(),
        retain_until=datetime.now(UTC) + timedelta(days=1),
    )


def test_a_row_naming_a_version_that_does_not_exist_is_found(
    archived: Settings, vsettings: VerificationSettings, tmp_path: Path
) -> None:
    """Deleting a locked version is impossible, so the check is proven on a catalog that names a
    version the bucket never had. The forged manifest has no locked copy: reported too."""
    forged = tmp_path / "forged"
    shutil.copytree(archived.catalog_dir, forged)
    real = rows(archived)[0]
    ghost = replace(
        real, encounter_id="ghost-version", version_id="no-such-version", run_id="forged-run"
    )
    Catalog.open(forged).append(
        [ghost],
        run_id="forged-run",
        now=datetime.now(UTC),
        store=_BucketView(archived),
        retain_until=datetime.now(UTC) + timedelta(days=1),
    )
    summary = verify(_with_catalog(archived, forged), vsettings)
    assert problems(summary) == {
        "ghost-version": {"object.missing"},
        "catalog.chain": {"catalog.copy_missing"},
    }


def test_a_missing_object_is_found_by_the_record_check_and_by_the_inventory(
    archived: Settings, vsettings: VerificationSettings, tmp_path: Path
) -> None:
    forged = tmp_path / "forged"
    shutil.copytree(archived.catalog_dir, forged)
    real = rows(archived)[0]
    ghost = replace(
        real,
        encounter_id="ghost-object",
        object_key="records/v1/17011/cd/r1" + "cd" * 19,
        run_id="forged-run",
    )
    Catalog.open(forged).append(
        [ghost],
        run_id="forged-run",
        now=datetime.now(UTC),
        store=_BucketView(archived),
        retain_until=datetime.now(UTC) + timedelta(days=1),
    )
    settings = _with_catalog(archived, forged)
    summary = verify(settings, vsettings)
    assert problems(summary) == {
        "ghost-object": {"object.missing"},
        "catalog.chain": {"catalog.copy_missing"},
    }
    # Not selected (since tomorrow): the inventory still finds it.
    tomorrow = datetime.now(UTC).date() + timedelta(days=2)
    selection = Selection(mode=Mode.SINCE, since=tomorrow)
    plan = RunPlan.create(settings, vsettings, selection=selection, now=datetime.now(UTC))
    with VerificationRun.start(settings, vsettings, plan, keep_results=True) as run:
        assert run.rows == []
        inventory_only = run.finish()
    assert problems(inventory_only) == {
        "inventory": {"inventory.missing"},
        "catalog.chain": {"catalog.copy_missing"},
    }


def test_a_retain_until_in_the_store_earlier_than_the_catalog_is_found(
    archived: Settings, vsettings: VerificationSettings, tmp_path: Path
) -> None:
    """A COMPLIANCE lock cannot be shortened, so the catalog is made to promise more: a rewritten
    catalog, which also differs from its locked bucket copy (reported as such)."""
    original = rows(archived)
    victim = original[4]
    later = replace(victim, retain_until=victim.retain_until + timedelta(days=365))
    forged = tmp_path / "forged"
    _write_catalog(forged, [later if r is victim else r for r in original], victim.run_id)
    summary = verify(_with_catalog(archived, forged), vsettings)
    assert problems(summary) == {
        # its evidence record is locked only as long as the record was: both would end early
        victim.encounter_id: {"lock.retention_shortened", "evidence.lock"},
        "catalog.chain": {"catalog.copy_mismatch"},
    }


class _BucketView(MemoryStore):
    """Append's bucket side for a forged catalog: it sees the real manifests (so the chain
    continues) but keeps the new one to itself."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        real = SealedStore.for_settings(settings, S3ObjectStore.from_settings(settings))
        for v in real.list_versions(BUCKET_PREFIX):
            data = real.get(v.key, version_id=v.version_id)  # opened: what append compares
            self.put_locked(v.key, data, retain_until=datetime.now(UTC) + timedelta(days=1))


def _copy_catalog(settings: Settings, tmp_path: Path) -> Path:
    copy = tmp_path / "catalog-copy"
    shutil.copytree(settings.catalog_dir, copy)
    return copy


def _second_manifest(settings: Settings) -> None:
    """An empty second run's manifest, so that there is a manifest in the middle of the chain."""
    Catalog.open(settings.catalog_dir).append(
        [],
        run_id="second-run",
        now=datetime.now(UTC),
        store=SealedStore.for_settings(settings, S3ObjectStore.from_settings(settings)),
        retain_until=datetime.now(UTC) + timedelta(days=1),
    )


def _alter_row(directory: Path) -> None:
    from archive.catalog import decode_header, decode_table, encode_manifest

    path = directory / "manifests" / "0000000001.parquet"
    data = path.read_bytes()
    header, table = decode_header(data, name="m"), decode_table(data, name="m")
    altered = [
        replace(r, retention_class="altered") if i == 0 else r
        for i, r in enumerate(table_to_rows(table))
    ]
    from archive.catalog import rows_to_table

    path.write_bytes(encode_manifest(rows_to_table(altered), header))


def _remove_first(directory: Path) -> None:
    (directory / "manifests" / "0000000001.parquet").unlink()


def _flip_byte(directory: Path) -> None:
    path = directory / "manifests" / "0000000001.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_alter_row, {"catalog.chain_broken"}),
        (_remove_first, {"catalog.chain_broken"}),
        (_flip_byte, {"catalog.manifest_corrupt", "catalog.chain_broken"}),
    ],
    ids=["row-altered", "manifest-removed", "one-byte-changed"],
)
def test_a_damaged_catalog_is_found_and_its_rows_are_not_trusted(
    archived: Settings,
    vsettings: VerificationSettings,
    tmp_path: Path,
    damage: Any,
    expected: set[str],
) -> None:
    _second_manifest(archived)
    copy = _copy_catalog(archived, tmp_path)
    damage(copy)
    summary = verify(_with_catalog(archived, copy), vsettings)
    found = problems(summary)
    assert set(found) == {"catalog.chain"}
    assert found["catalog.chain"] <= expected
    assert summary.results == ()
    assert summary.status is Status.FAILED


# --- the flow and the command line --------------------------------------------------------------


def test_the_cli_runs_the_flow_writes_log_and_report_and_sets_the_exit_code(
    archived: Settings, export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from flows import verify as verify_flow
    from infra.cli.commands import verify_cmd
    from verification.log import read_log

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    out = tmp_path / "verification"
    vsettings = VerificationSettings(output_dir=out, workers=2, batch_size=10)  # a real pool
    monkeypatch.setattr(verify_flow, "VERIFICATION_SETTINGS", vsettings)
    monkeypatch.setattr(verify_flow, "SETTINGS", None)
    runner = CliRunner()
    # as of a year ahead (through the flow's ``at``): still proven, and the report says when
    clean = runner.invoke(verify_cmd, ["--mode", "full", "--at", "+1y"], obj=archived)
    assert clean.exit_code == 0, clean.output
    assert "PASSED" in clean.output
    assert "; as of " in clean.output
    total = len(rows(archived))
    log = read_log(out)
    assert log.num_rows == total
    assert set(log["status"].to_pylist()) == {"passed"}

    victim = rows(archived)[1]
    S3ObjectStore.from_settings(archived).set_legal_hold(
        victim.object_key, version_id=victim.version_id, on=True
    )
    damaged = runner.invoke(verify_cmd, ["--mode", "sample", "--share", "1"], obj=archived)
    assert damaged.exit_code == 1, damaged.output
    assert "lock.hold_mismatch" in damaged.output
    log = read_log(out)
    assert log.num_rows == 2 * total  # one row per record per run
    [bad] = [r for r in log.to_pylist() if r["status"] != "passed"]
    assert (bad["encounter_id"], bad["reason_code"]) == (victim.encounter_id, "lock.hold_mismatch")
    [report] = [p for p in (out / "reports").glob("*.html") if victim.encounter_id in p.read_text()]
    text = report.read_text(encoding="utf-8")
    assert "lock.hold_mismatch" in text
    for secret in export.secrets:  # names, CCCD and BHYT numbers never reach a report or log
        assert secret not in text
        assert secret not in str(log.to_pylist())


def test_the_renewal_horizon_lists_expiring_tsa_certificates_and_weak_hashes(
    archived: Settings, tmp_path: Path
) -> None:
    """Renewal is a to-do list for the timestamp-renewal job, not a failure."""

    def renewals(settings: Settings = archived, **changes: Any) -> dict[str, set[str]]:
        vsettings = VerificationSettings(output_dir=tmp_path / "v", workers=1, **changes)
        plan = RunPlan.create(
            settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
        )
        with VerificationRun.start(settings, vsettings, plan, keep_results=True) as run:
            for batch in run.batches():
                run.verify_batch(batch)
            summary = run.finish()
        assert summary.status is Status.PASSED
        return {r.encounter_id: {r.renewal.reason_code} for r in summary.results if r.renewal}

    everyone = {r.encounter_id for r in rows(archived)}
    assert renewals(renewal_horizon_days=1) == {}
    due = renewals(renewal_horizon_days=36500)
    assert set(due) == everyone
    assert set().union(*due.values()) == {"horizon.tsa_expiring"}
    # Weak by the evidence renewal's dated table: sha256 weakens tomorrow, within a 2-day
    # horizon (the evidence check, judged today, still passes).
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    weakening = archived.evidence.model_copy(update={"weak_algorithms": (f"sha256@{tomorrow}",)})
    dated = archived.model_copy(update={"evidence": weakening})
    weak = renewals(dated, renewal_horizon_days=2)
    assert set().union(*weak.values()) == {"horizon.weak_hash"}
    assert set(weak) == everyone


def _as_of_a_date_the_signature_stands_on_the_evidence_until_its_tsa_lapses(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    """``verify --at``: a year ahead the signer's certificate has nothing to do with it (the
    evidence record proves the PDF existed while it was valid); eleven years ahead the only TSA
    of the records' evidence (the development TSA, 10 years) has lapsed with no renewal. Part of
    the clean-archive test, whose archive it reuses (archiving one costs ~20 s)."""

    def as_of(years: int) -> Summary:
        at = datetime.now(UTC) + timedelta(days=365 * years)
        sample = Selection(mode=Mode.SAMPLE, share=0.2, seed=1)  # a few records are enough
        plan = RunPlan.create(archived, vsettings, selection=sample, now=datetime.now(UTC), at=at)
        with VerificationRun.start(archived, vsettings, plan, keep_results=True) as run:
            for batch in run.batches():
                run.verify_batch(batch)
            return run.finish()

    soon = as_of(1)
    assert soon.status is Status.PASSED, problems(soon)
    assert "; as of " in soon.mode
    assert soon.to_dict()["as_of"] is not None
    signature = {c.message for r in soon.results for c in r.checks if c.check == "signature"}
    assert all("proven by the evidence" in m for m in signature), signature
    late = as_of(11)
    everyone = {r.encounter_id for r in late.results}
    assert everyone == {r.encounter_id for r in soon.results}
    lapsed = {"evidence.expired", "sig.timestamp_expired"}
    assert problems(late) == {encounter: lapsed for encounter in everyone}
    from archive.audit import AuditLog

    audit = AuditLog.for_settings(archived, S3ObjectStore.from_settings(archived))
    [*_, last] = audit.show(action="verify.run")
    assert late.as_of is not None
    assert last.detail["as_of"] == late.as_of.isoformat()  # the audit says which date was asked


def test_a_hold_placed_through_the_retention_register_is_expected(
    archived: Settings, vsettings: VerificationSettings
) -> None:
    """The flow reads the expected holds from the retention register (verification/ itself
    imports only archive): a hold placed there passes; the same hold without it is reported."""
    from flows.verify import register_inputs
    from retention.holds import HoldScope, place_hold
    from retention.parts import RetentionParts
    from retention.people import Actor

    victim = rows(archived)[6]
    parts = RetentionParts.open(archived)
    place_hold(
        HoldScope(encounter_ids=(victim.encounter_id,)),
        case_ref="TA-2026/17",
        reason="court order",
        by=Actor("lan", "records-officer"),
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
        tz=parts.tz,
    )
    holds, disposed = register_inputs(archived)
    assert holds.expected_hold(victim.encounter_id)
    assert disposed == frozenset()
    with_register = verify(archived, vsettings, holds=holds)
    assert with_register.status is Status.PASSED, problems(with_register)
    assert problems(verify(archived, vsettings)) == {victim.encounter_id: {"lock.hold_mismatch"}}
