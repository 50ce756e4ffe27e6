"""Dossier export refuses a document that is not byte-identical to the catalogued one, and picks
the newest version of a renewed record."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.catalog import CatalogRow
from archive.core.settings import SealSettings
from archive.render import Renderer
from archive.seal import LocalKeyring, ObjectIdentity, seal
from archive.sign import TrustPolicy
from retrieval import DossierError, export_dossier, newest_per_encounter
from tests.support.fhir import canonical, example_bundle
from tests.support.memstore import MemoryStore
from verification.config import HoldSet
from verification.evidence import Environment
from verification.settings import VerificationSettings, VerifySettings, weak_table

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NO_TRUST = TrustPolicy(signer_roots=(), tsa_roots=(), hospital_signers=frozenset())
PDF = b"%PDF-1.7 not really a signed document"


def _row(*, pdf_sha256: str, version_id: str, signed_at: datetime) -> CatalogRow:
    h = "ab" * 32
    return CatalogRow(
        encounter_id="E1",
        patient_pseudonym="p1_" + h,
        facility="79001",
        admitted_at=NOW,
        discharged_at=NOW,
        retention_class="standard-10y",
        retain_until=NOW + timedelta(3650),
        bucket="memory",
        object_key="records/abc",
        version_id=version_id,
        pdf_sha256=pdf_sha256,
        data_sha256=h,
        sealed_sha256=h,
        sealed_size=1,
        signer_cert_sha256=h,
        signed_at=signed_at,
        kek_id="emr-archive-kek",
        kek_version=1,
        format_version=1,
        run_id="run-1",
    )


def test_newest_version_of_each_encounter_is_exported() -> None:
    old = _row(pdf_sha256="aa" * 32, version_id="v1", signed_at=NOW)
    renewed = _row(pdf_sha256="bb" * 32, version_id="v2", signed_at=NOW + timedelta(days=900))
    other = replace(old, encounter_id="E0")
    assert newest_per_encounter([renewed, old, other]) == [other, renewed]


def test_a_document_that_differs_from_the_catalog_is_not_exported(tmp_path: Path) -> None:
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    store = MemoryStore()
    sealed = seal(
        PDF,
        identity=ObjectIdentity("memory", "records/abc", "E1"),
        keys=keys,
        settings=SealSettings(),
    )
    put = store.put_locked("records/abc", sealed, retain_until=NOW + timedelta(days=1))
    wrong = hashlib.sha256(PDF + b"x").hexdigest()  # the catalog recorded another document
    row = _row(pdf_sha256=wrong, version_id=put.version_id, signed_at=NOW)
    env = Environment(
        store=store,
        keys=keys,
        seal=SealSettings(),
        trust=NO_TRUST,
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    with pytest.raises(DossierError, match="differs from the catalog"):
        export_dossier([row], env=env, out_dir=tmp_path / "out", label="d", now=NOW, context={})
    assert not list((tmp_path / "out").glob("*.zip"))  # nothing partial left behind
    assert not list((tmp_path / "out").glob(".dossier-*"))


def test_nothing_to_export_is_an_error(tmp_path: Path) -> None:
    env = Environment(
        store=MemoryStore(),
        keys=LocalKeyring.create(tmp_path, kek_id="k"),
        seal=SealSettings(),
        trust=NO_TRUST,
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    with pytest.raises(DossierError, match="nothing to export"):
        export_dossier([], env=env, out_dir=tmp_path, label="d", now=NOW, context={})


@pytest.mark.parametrize("encounter_id", [".", "..", "../x"])
def test_an_encounter_id_that_is_a_path_never_becomes_a_bag_folder(
    tmp_path: Path, encounter_id: str
) -> None:
    # Rows catalogued before such ids were quarantined: data/<id>/ would be the bag itself or
    # its parent. The export must refuse with a reason, before writing anything.
    bundle = example_bundle()
    pdf = Renderer.create().render(bundle, canonical(bundle), created_at=NOW).pdf
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    store = MemoryStore()
    identity = ObjectIdentity("memory", "records/abc", encounter_id)
    sealed = seal(pdf, identity=identity, keys=keys, settings=SealSettings())
    put = store.put_locked("records/abc", sealed, retain_until=NOW + timedelta(days=1))
    row = replace(
        _row(pdf_sha256=hashlib.sha256(pdf).hexdigest(), version_id=put.version_id, signed_at=NOW),
        encounter_id=encounter_id,
    )
    env = Environment(
        store=store,
        keys=keys,
        seal=SealSettings(),
        trust=NO_TRUST,
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    out = tmp_path / "out"
    with pytest.raises(DossierError, match="cannot name a folder"):
        export_dossier([row], env=env, out_dir=out, label="d", now=NOW, context={})
    assert not out.exists() or not any(out.iterdir())


def test_two_versions_of_one_record_export_its_newest_only(tmp_path: Path) -> None:
    # A caller handing every catalogued version (an amended record, a corrected scan manifest)
    # got FileExistsError: each version wrote the encounter's one folder.
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    store = MemoryStore()
    rows = []
    bundle, renderer = example_bundle(), Renderer.create()
    pdfs = [
        renderer.render(bundle, canonical(bundle), created_at=NOW + timedelta(n)).pdf
        for n in (1, 2)
    ]
    for n, pdf in enumerate(pdfs, start=1):
        sealed = seal(
            pdf,
            identity=ObjectIdentity("memory", f"records/v1/79001/ab/r{n}ab" + "0" * 36, "E1"),
            keys=keys,
            settings=SealSettings(),
        )
        put = store.put_locked(
            f"records/v1/79001/ab/r{n}ab" + "0" * 36, sealed, retain_until=NOW + timedelta(days=1)
        )
        signed = NOW + timedelta(days=n)
        row = _row(
            pdf_sha256=hashlib.sha256(pdf).hexdigest(), version_id=put.version_id, signed_at=signed
        )
        rows.append(replace(row, object_key=f"records/v1/79001/ab/r{n}ab" + "0" * 36))
    env = Environment(
        store=store,
        keys=keys,
        seal=SealSettings(),
        trust=NO_TRUST,
        holds=HoldSet(),
        settings=VerificationSettings(),
        weak=weak_table(VerifySettings()),
    )
    result = export_dossier(rows, env=env, out_dir=tmp_path / "out", label="d", now=NOW, context={})
    assert [d.encounter_id for d in result.documents] == ["E1"]
    with zipfile.ZipFile(result.path) as z:
        assert z.read("d/data/E1/discharge-summary.pdf") == pdfs[1] != pdfs[0]
