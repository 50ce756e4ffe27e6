"""The nightly archive end to end on the real stack: sample export in, locked records out.

Every archived object is opened and checked the way an inspector would: it unseals, it is PDF/A,
its fonts are embedded, it carries the exact source bundle, its B-LTA signature validates offline
with the configured signer, and the patient's name reads back with its diacritics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from archive import wiring
from archive.catalog import Catalog
from archive.pipeline import ArchiveRun, RunOptions
from archive.render import check_pdfa3b, extract_embedded_data, pdffonts_check, qpdf_check
from archive.seal import LocalKeyring, ObjectIdentity, unseal
from archive.sign import SignerConfig, load_signer, validate_pdf_signatures
from archive.sources import canonical_json
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.nightly import Export, make_export, record_versions, run_once

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("export"), encounters=30, seed=11)


def test_a_window_is_archived_and_every_record_checks_out(
    settings: Settings, export: Export
) -> None:
    summary = run_once(settings, export)
    expected = set(export.summary.in_window)
    assert summary.archived == len(expected)
    assert summary.failed == {}
    assert summary.quarantined_total >= sum(export.summary.bad_counts().values())

    store = S3ObjectStore.from_settings(settings)
    keys = LocalKeyring.open(settings.keyring_dir)
    catalog = Catalog.open(settings.catalog_dir)
    rows = catalog.rows().to_pylist()
    assert {r["encounter_id"] for r in rows} == expected
    trust = wiring.trust_policy(settings)
    configured = load_signer(SignerConfig.from_settings(settings)).identity.fingerprint_sha256
    bundles = _source_bundles(export)
    for row in rows[:6]:  # the full set of checks on a few; the cheap ones on all below
        identity = ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"])
        pdf = unseal(
            store.get(row["object_key"], version_id=row["version_id"]),
            identity=identity,
            keys=keys,
            settings=settings.seal,
        )
        assert check_pdfa3b(pdf).passed
        assert qpdf_check(pdf).passed
        assert pdffonts_check(pdf).passed
        embedded = extract_embedded_data(pdf)
        assert embedded == bundles[row["encounter_id"]]
        report = validate_pdf_signatures(pdf, trust=trust)
        assert report.passed, report.reason
        assert report.checks[0].signer_cert_sha256 == row["signer_cert_sha256"] == configured
        text = subprocess.run(
            ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode("utf-8")
        patient = json.loads(embedded)["entry"][1]["resource"]
        assert patient["resourceType"] == "Patient"
        assert patient["name"][0]["text"] in text
    for row in rows:
        head = store.head(row["object_key"], version_id=row["version_id"])
        assert head.sha256 == row["sealed_sha256"]
        assert head.lock.mode == "COMPLIANCE"
        assert head.lock.retain_until == row["retain_until"]
        # 10 years counted from the end of the discharge year (local time), or longer
        assert row["retain_until"] >= datetime(2037, 1, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


def test_rerunning_a_window_stores_nothing_new(settings: Settings, export: Export) -> None:
    first = run_once(settings, export)
    store = S3ObjectStore.from_settings(settings)
    before = sorted(record_versions(store))
    second = run_once(settings, export)
    assert second.archived == second.adopted == 0
    assert second.already_archived == first.archived
    assert second.manifest is None
    assert sorted(record_versions(store)) == before
    assert Catalog.open(settings.catalog_dir).rows().num_rows == first.archived


def test_objects_stored_before_a_crash_are_adopted_not_duplicated(
    settings: Settings, export: Export
) -> None:
    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC), batch_size=8
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as crashed:
        batch = next(crashed.batches())
        crashed.archive_batch(batch)  # stored, then "killed": no quarantine, no catalog
    store = S3ObjectStore.from_settings(settings)
    stored = dict(record_versions(store))
    assert len(stored) == len(batch)

    summary = run_once(settings, export)
    assert summary.adopted == len(batch)
    assert summary.archived == len(export.summary.in_window) - len(batch)
    after = list(record_versions(store))
    assert len(after) == len({k for k, _ in after}) == len(export.summary.in_window)
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    assert {(r["object_key"], r["version_id"]) for r in rows} == set(after)


def test_a_second_run_while_one_is_in_progress_is_refused_before_any_work(
    settings: Settings, export: Export
) -> None:
    from archive.core.errors import RunInProgressError

    options = RunOptions.create(
        settings, window=export.window, source=export.path, now=datetime.now(UTC), batch_size=8
    )
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as first:
        with pytest.raises(RunInProgressError, match=options.run_id):
            run_once(settings, export)
        first.archive_batch(next(first.batches()))
    assert run_once(settings, export).adopted > 0  # the lock went with the first run


def test_every_quarantine_kind_is_stored_sealed_with_a_reason(
    settings: Settings, export: Export
) -> None:
    summary = run_once(settings, export)
    store = S3ObjectStore.from_settings(settings)
    entries = [v for v in store.list_versions("quarantine/") if not v.is_delete_marker]
    assert len(entries) == summary.quarantined_total
    index = settings.data_dir / "quarantine" / f"{summary.run_id}.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert {line["object_key"] for line in lines} == {e.key for e in entries}
    reasons = {line["reason"] for line in lines}
    for kind in (
        "malformed-json",
        "unresolved-reference",
        "missing-period-end",
        "invalid-icd10",
        "invalid-id",
        "control-characters",
    ):
        assert kind in reasons, f"{kind} was planted but not quarantined"
    keys = LocalKeyring.open(settings.keyring_dir)
    first = lines[0]
    token = first["object_key"].rsplit("/", 1)[1]
    opened = json.loads(
        unseal(
            store.get(first["object_key"], version_id=first["version_id"]),
            identity=ObjectIdentity(store.bucket, first["object_key"], token),
            keys=keys,
            settings=settings.seal,
        )
    )
    assert opened["reason"] == first["reason"]
    assert opened["raw_line_base64"]


def test_no_phi_in_logs_reports_keys_or_catalog(
    settings: Settings,
    export: Export,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    summary = run_once(settings, export)
    out = capsys.readouterr()
    texts = [caplog.text, out.out, out.err, summary.to_markdown(), json.dumps(summary.to_dict())]
    texts.append((settings.data_dir / "runs" / f"{summary.run_id}.json").read_text())
    texts.append((settings.data_dir / "quarantine" / f"{summary.run_id}.jsonl").read_text())
    store = S3ObjectStore.from_settings(settings)
    texts += [v.key for v in store.list_versions()]
    catalog = Catalog.open(settings.catalog_dir).rows().to_pylist()
    texts += [json.dumps(row, default=str, ensure_ascii=False) for row in catalog]
    blob = "\n".join(texts)
    leaked = [value for value in export.secrets if value in blob]
    assert not leaked, f"{len(leaked)} PHI values leaked"
    patient_ids = set(export.names)
    assert not [pid for pid in patient_ids if f'"{pid}"' in blob]


def test_an_expired_signer_is_refused_before_anything_is_stored(
    settings: Settings, export: Export
) -> None:
    pki = settings.pki_dir
    expired = settings.model_copy(
        update={
            "signer": settings.signer.model_copy(
                update={
                    "pkcs12_path": pki / "signers" / "expired-signer.p12",
                    "pkcs12_password_file": pki / "signers" / "expired-signer.pass",
                    "tsa_url": settings.tsa_url,
                    "trust_roots": (pki / "trust-root.pem",),
                    "tsa_trust_roots": (pki / "trust-root.pem",),
                }
            )
        }
    )
    from archive.core.errors import SigningError

    with pytest.raises(SigningError, match="expired"):
        run_once(expired, export)
    store = S3ObjectStore.from_settings(settings)
    assert list(store.list_versions("records/")) == []
    assert list(store.list_versions("catalog/")) == []


def test_tsa_down_leaves_records_for_the_next_run(settings: Settings, export: Export) -> None:
    pki = settings.pki_dir
    down = settings.model_copy(
        update={
            "signer": settings.signer.model_copy(
                update={
                    "pkcs12_path": pki / "signers" / "hospital-signer.p12",
                    "pkcs12_password_file": pki / "signers" / "hospital-signer.pass",
                    "tsa_url": "http://127.0.0.1:9/tsa",
                    "trust_roots": (pki / "trust-root.pem",),
                    "tsa_trust_roots": (pki / "trust-root.pem",),
                }
            )
        }
    )
    from archive.core.errors import SigningError

    with pytest.raises(SigningError, match=r"(?i)timestamp|TSA"):
        run_once(down, export)
    store = S3ObjectStore.from_settings(settings)
    assert list(store.list_versions("records/")) == []
    summary = run_once(settings, export)  # the TSA is back: nothing was lost
    assert summary.archived == len(export.summary.in_window)


def _source_bundles(export: Export) -> dict[str, bytes]:
    from archive.sources import EncounterBundle, collect

    items = collect(export.path, window=export.window)
    return {i.encounter_id: i.canonical for i in items if isinstance(i, EncounterBundle)}


def test_canonical_bytes_are_what_the_collector_hashes(export: Export) -> None:
    bundles = _source_bundles(export)
    some = next(iter(bundles.values()))
    assert canonical_json(json.loads(some)) == some


@pytest.fixture(scope="module", autouse=True)
def _pdf_tools() -> None:
    for tool in ("pdftotext", "qpdf", "pdffonts"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run `make sysdeps`")
