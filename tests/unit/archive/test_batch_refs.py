"""Batches by reference for cluster workers: what the flow ships, what it counts on return."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from archive.core.errors import KeyringError, WorkerStoreError
from archive.core.settings import Settings
from archive.pipeline import batch
from archive.pipeline.batch import (
    RunContext,
    plan_refs,
    with_local_secrets,
    without_secrets,
)
from archive.pipeline.ledger import Ledger
from archive.pipeline.summary import RunSummary
from archive.pipeline.worker import RecordOutcome
from archive.pipeline.worker_keys import keys_unavailable
from archive.sources import EncounterBundle
from tests.support.catalog import make_row

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
SECRET = "s3-secret-that-must-stay-home"


def _bundle(i: int, minutes: int, revision: int = 1) -> EncounterBundle:
    return EncounterBundle(
        encounter_id=f"enc-{i:03d}",
        patient_id=f"pat-{i}",
        facility_code="79001",
        admitted_at=T0 - timedelta(days=2),
        discharged_at=T0 + timedelta(minutes=minutes),
        encounter_class="IMP",
        department_code=None,
        discharge_disposition="home",
        accident_code=None,
        treatment_result=None,
        icd10_codes=(),
        procedure_codes=(),
        patient_deceased=False,
        record_number=None,
        episode_key=None,
        bundle={},
        canonical=f"data-{i}".encode(),
        revision=revision,
    )


def test_refs_are_sorted_by_discharge_and_each_window_holds_its_members() -> None:
    # The collector yields by encounter id; discharge times are scattered over the day.
    batches = [[_bundle(1, 600), _bundle(2, 5)], [_bundle(3, 300, revision=2), _bundle(4, 5)]]
    refs = plan_refs(batches, batch_size=3)
    assert [len(r.members) for r in refs] == [3, 1]
    times = {b.encounter_id: b.discharged_at for bs in batches for b in bs}
    assert [m.encounter_id for m in refs[0].members] == ["enc-002", "enc-004", "enc-003"]
    for ref in refs:
        for member in ref.members:
            assert times[member.encounter_id] in ref.window  # half-open: the last one too
    assert refs[0].window.end <= refs[1].window.start + timedelta(microseconds=1)
    assert refs[0].members[2].revision == 2
    assert refs[0].members[0].data_sha256 == batches[0][1].sha256


def test_no_batches_plan_no_refs() -> None:
    assert plan_refs([], batch_size=10) == []


def _with_key(settings: Settings) -> Settings:
    s3 = settings.s3.model_copy(
        update={"access_key_id": "archive", "secret_access_key": SecretStr(SECRET)}
    )
    return settings.model_copy(update={"s3": s3})


def test_the_s3_secret_never_travels_to_a_worker(tmp_path: Path) -> None:
    settings = _with_key(Settings(data_dir=tmp_path))
    context = RunContext(
        settings=without_secrets(settings),
        classifier=None,  # type: ignore[arg-type]  # not what this test ships
        known_signers=frozenset(),
        run_id="run-1",
        created_at=T0,
        source=tmp_path,
    )
    shipped = pickle.dumps(context)
    assert SECRET.encode() not in shipped
    assert context.settings.s3.access_key_id == "archive"  # the worker knows whose secret


def test_a_worker_without_its_own_secret_refuses_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = without_secrets(_with_key(Settings(data_dir=tmp_path)))
    with pytest.raises(WorkerStoreError, match="EMR_ARCHIVE_S3__SECRET_ACCESS_KEY"):
        with_local_secrets(shipped)
    monkeypatch.setenv("EMR_ARCHIVE_S3__SECRET_ACCESS_KEY", SECRET)
    completed = with_local_secrets(shipped).s3.secret_access_key
    assert completed is not None
    assert completed.get_secret_value() == SECRET


def test_a_record_reported_twice_is_catalogued_once() -> None:
    """Dask reruns a batch whose worker died after its result was sent; the same stored
    version must not become two catalog rows."""
    ledger = Ledger(RunSummary("run-1", "a", "b"))
    row = make_row(1, "run-1")
    archived = RecordOutcome(row.encounter_id, "archived", row, pdf_bytes=10)
    ledger.record(archived)
    ledger.record(RecordOutcome(row.encounter_id, "adopted", row, pdf_bytes=10))
    assert ledger.rows == [row]
    assert (ledger.summary.archived, ledger.summary.adopted) == (1, 0)
    ledger.record(RecordOutcome("enc-x", "failed", reason_code="worker.store_unavailable (x)"))
    assert ledger.summary.failed == {"worker.store_unavailable": 1}


@pytest.mark.parametrize(
    ("keys", "names"),
    [
        ({}, ("keys.provider = local", "local keyring in ", "/keys")),
        (
            {
                "provider": "transit",
                "transit_url": "https://bao.hospital.example:8200",
                "transit_key": "emr-kek",
            },
            ("keys.provider = transit", "transit/emr-kek", "https://bao.hospital.example:8200"),
        ),
        (
            {"provider": "pkcs11", "pkcs11_token_label": "emr-hsm", "pkcs11_pin_env": "HSM_PIN"},
            ("keys.provider = pkcs11", "PKCS#11 token emr-hsm", "$HSM_PIN"),
        ),
    ],
    ids=["local", "transit", "pkcs11"],
)
def test_a_worker_without_its_keys_names_the_provider_and_never_quotes_a_foreign_error(
    tmp_path: Path, keys: dict[str, str], names: tuple[str, ...]
) -> None:
    settings = Settings(data_dir=tmp_path)
    settings = settings.model_copy(update={"keys": settings.keys.model_copy(update=keys)})
    ours = keys_unavailable(settings, KeyringError(f"no keyring in {tmp_path}/keys"))
    assert ours.reason_code == "worker.keys_unavailable"
    assert all(name in str(ours) for name in names), str(ours)
    # A library's error may quote what it was given (a record's data): its type alone is said.
    foreign = keys_unavailable(settings, ValueError("patient Nguyễn Văn An, CCCD 079201001234"))
    assert "ValueError" in str(foreign)
    assert "Nguyễn" not in str(foreign)
    assert "079201001234" not in str(foreign)


def test_an_amendment_s_extended_retention_travels_with_its_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster worker rereads the bundle from the source, which knows nothing of the retention
    register: the flow's extension must come back with it, or the amendment of a record kept
    longer is locked until its class's (long past) date and fails."""
    kept = ("death", datetime(2045, 1, 1, tzinfo=UTC))
    amended = dataclasses.replace(_bundle(1, 5, revision=2), extended_retention=kept)
    [ref] = plan_refs([[amended, _bundle(2, 6)]], batch_size=10)
    assert [m.extended_retention for m in ref.members] == [kept, None]
    fresh = [_bundle(1, 5), _bundle(2, 6)]  # as the source yields them
    monkeypatch.setattr(batch, "_items", lambda context, ref: iter(fresh))
    context = RunContext(
        settings=Settings(),
        classifier=None,  # type: ignore[arg-type]  # not used to reread
        known_signers=frozenset(),
        run_id="run-1",
        created_at=T0,
        source=tmp_path,
    )
    bundles, missing = batch._reread(context, pickle.loads(pickle.dumps(ref)))  # noqa: S301
    assert missing == []
    assert [(b.revision, b.extended_retention) for b in bundles] == [(2, kept), (1, None)]
