"""Inspector retrieval on the real stack: archive a window, search it, export a dossier as a BagIt
bag an inspector can validate, refuse an inspector without a grant, and find it all in the audit
log the way ``emr-archive audit show --actor`` reads it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from archive.audit import AuditLog
from archive.catalog import Catalog
from archive.store import S3ObjectStore
from infra.cli import EXIT_FORBIDDEN, EXIT_UNAUTHENTICATED
from infra.cli.commands import (
    grant_group,
    login_cmd,
    logout_cmd,
    retrieve_cmd,
    search_cmd,
)
from infra.settings import AppSettings as Settings
from retrieval import AccessDeniedError, Principal, Query, Retrieval, Role, validate_zip
from tests.support.nightly import Export, make_export, run_once

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("export"), encounters=12, seed=23)


@dataclass
class Archived:
    settings: Settings
    retrieval: Retrieval
    rows: list[dict[str, Any]]
    officer: Principal
    inspector: Principal
    stranger: Principal
    patient_ids: dict[str, str]  # pseudonym -> patient id


@pytest.fixture
def archived(settings: Settings, export: Export) -> Iterator[Archived]:
    assert run_once(settings, export).archived
    r = Retrieval.open(settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.minh", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.minh", PASSWORD, now=now)
    for name, role in (
        ("ro.binh", Role.RECORDS_OFFICER),
        ("insp.an", Role.INSPECTOR),
        ("insp.khac", Role.INSPECTOR),
    ):
        r.add_user(admin, name, role, PASSWORD, now=now)
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    patient_ids = {r.pseudonym(pid): pid for pid in export.names}
    yield Archived(
        settings,
        r,
        rows,
        r.sign_in("ro.binh", PASSWORD, now=now),
        r.sign_in("insp.an", PASSWORD, now=now),
        r.sign_in("insp.khac", PASSWORD, now=now),
        patient_ids,
    )
    r.index.close()


def test_search_by_encounter_patient_facility_and_class(archived: Archived) -> None:
    r, officer, now = archived.retrieval, archived.officer, datetime.now(UTC)
    row = archived.rows[0]
    (hit,) = r.search(officer, Query(encounter_id=row["encounter_id"]), now=now).hits
    assert (hit.facility, hit.retention_class) == (row["facility"], row["retention_class"])
    assert hit.retain_until == row["retain_until"]
    assert not hit.on_hold
    same_patient = {
        x["encounter_id"]
        for x in archived.rows
        if x["patient_pseudonym"] == row["patient_pseudonym"]
    }
    by_patient = r.search(
        officer,
        Query(patient_pseudonym=r.pseudonym(archived.patient_ids[row["patient_pseudonym"]])),
        now=now,
    )
    assert {h.encounter_id for h in by_patient.hits} == same_patient
    by_facility = r.search(officer, Query(facility=row["facility"]), now=now)
    assert {h.encounter_id for h in by_facility.hits} == {
        x["encounter_id"] for x in archived.rows if x["facility"] == row["facility"]
    }
    by_class = r.search(officer, Query(retention_class=row["retention_class"]), now=now)
    assert row["encounter_id"] in {h.encounter_id for h in by_class.hits}


def test_inspector_exports_a_dossier_that_validates_as_bagit(
    archived: Archived, tmp_path: Path
) -> None:
    r, now = archived.retrieval, datetime.now(UTC)
    row = archived.rows[0]
    grant = r.issue_grant(
        archived.officer,
        now=now,
        inspector="insp.an",
        case_ref="QD-7/2026",
        facility=row["facility"],
        valid_from=now,
        valid_until=now + timedelta(days=1),
    )
    result = r.export(
        archived.inspector, out_dir=tmp_path, now=now, encounter_id=row["encounter_id"]
    )
    assert result.path.stat().st_mode & 0o777 == 0o600
    bag = validate_zip(result.path)  # RFC 8493: every payload file against both manifests
    assert set(bag.algorithms) >= {"sha256", "sha512"}
    (doc,) = result.documents
    assert (doc.encounter_id, doc.status) == (row["encounter_id"], "passed")
    with zipfile.ZipFile(result.path) as z:
        top = z.namelist()[0].split("/")[0]
        eid = row["encounter_id"]
        pdf = z.read(f"{top}/data/{eid}/discharge-summary.pdf")
        data = z.read(f"{top}/data/{eid}/fhir-bundle.json")
        report = json.loads(z.read(f"{top}/data/{eid}/verification.json"))
        dossier = json.loads(z.read(f"{top}/data/dossier.json"))
    assert hashlib.sha256(pdf).hexdigest() == row["pdf_sha256"]  # byte-identical to the signed
    assert hashlib.sha256(data).hexdigest() == row["data_sha256"]
    assert report["status"] == "passed"
    assert {c["check"] for c in report["checks"]} == {
        "object",
        "unseal",
        "signature",
        "pdfa",
        "embedded-data",
        "conversion-mark",
        "lock",
        "evidence",
    }
    assert all(c["status"] == "passed" for c in report["checks"])
    assert dossier["files_sha256"][f"{eid}/discharge-summary.pdf"] == row["pdf_sha256"]
    assert dossier["grants"] == grant.grant_id

    audit = AuditLog.for_settings(archived.settings, S3ObjectStore.from_settings(archived.settings))
    exports = audit.show(actor="insp.an", action="retrieval.export")
    assert [(e.outcome, e.detail["grants"]) for e in exports] == [("success", grant.grant_id)]
    assert ("encounter", eid) in exports[0].entities
    assert exports[0].detail["zip_sha256"] == result.sha256


def test_patient_dossier_holds_every_encounter(archived: Archived, tmp_path: Path) -> None:
    r, now = archived.retrieval, datetime.now(UTC)
    pseudonym = archived.rows[0]["patient_pseudonym"]
    wanted = {x["encounter_id"] for x in archived.rows if x["patient_pseudonym"] == pseudonym}
    result = r.export(archived.officer, out_dir=tmp_path, now=now, patient_pseudonym=pseudonym)
    assert {d.encounter_id for d in result.documents} == wanted
    validate_zip(result.path)


def test_inspector_without_grant_is_refused_and_audited(archived: Archived, tmp_path: Path) -> None:
    r, now = archived.retrieval, datetime.now(UTC)
    eid = archived.rows[0]["encounter_id"]
    with pytest.raises(AccessDeniedError, match="no active grant"):
        r.export(archived.stranger, out_dir=tmp_path / "out", now=now, encounter_id=eid)
    assert not (tmp_path / "out").exists()  # nothing written
    audit = AuditLog.for_settings(archived.settings, S3ObjectStore.from_settings(archived.settings))
    (refused,) = audit.show(actor="insp.khac", action="retrieval.export")
    assert (refused.outcome, refused.role) == ("failure", "inspector")
    assert ("encounter", eid) in refused.entities


def test_cli_search_and_retrieve_run_as_an_identity(archived: Archived, tmp_path: Path) -> None:
    eid = archived.rows[0]["encounter_id"]
    runner = CliRunner()
    ok = runner.invoke(
        search_cmd,
        ["--encounter", eid, "--as", "ro.binh"],
        obj=archived.settings,
        input=PASSWORD + "\n",
    )
    assert ok.exit_code == 0, ok.output
    assert eid in ok.output
    out = ["--out", str(tmp_path / "out")]
    refused = runner.invoke(
        retrieve_cmd,
        ["--encounter", eid, "--as", "insp.khac", *out],
        obj=archived.settings,
        input=PASSWORD + "\n",
    )
    assert refused.exit_code == EXIT_FORBIDDEN, refused.output
    done = runner.invoke(
        retrieve_cmd,
        ["--encounter", eid, "--as", "ro.binh", *out],
        obj=archived.settings,
        input=PASSWORD + "\n",
    )
    assert done.exit_code == 0, done.output
    validate_zip(next((tmp_path / "out").glob("dossier-*.zip")))
    wrong = runner.invoke(
        search_cmd,
        ["--encounter", eid, "--as", "ro.binh"],
        obj=archived.settings,
        input="not the password\n",
    )
    assert wrong.exit_code == EXIT_UNAUTHENTICATED


def test_cli_token_login_grant_and_logout_replay(archived: Archived, tmp_path: Path) -> None:
    row = archived.rows[0]
    runner, settings = CliRunner(), archived.settings
    officer_token, inspector_token = tmp_path / "ro.token", tmp_path / "insp.token"
    for user, file in (("ro.binh", officer_token), ("insp.an", inspector_token)):
        done = runner.invoke(
            login_cmd,
            ["--as", user, "--token-file", str(file)],
            obj=settings,
            input=PASSWORD + "\n",
        )
        assert done.exit_code == 0, done.output
        assert file.stat().st_mode & 0o777 == 0o600
    issued = runner.invoke(
        grant_group,
        [
            "issue",
            "--inspector",
            "insp.an",
            "--encounter",
            row["encounter_id"],
            "--days",
            "1",
            "--case",
            "QD-9/2026",
            "--token-file",
            str(officer_token),
        ],
        obj=settings,
    )
    assert issued.exit_code == 0, issued.output
    search = ["--encounter", row["encounter_id"], "--token-file", str(inspector_token)]
    found = runner.invoke(search_cmd, search, obj=settings)
    assert found.exit_code == 0, found.output
    assert row["encounter_id"] in found.output
    saved = inspector_token.read_text()
    assert (
        runner.invoke(logout_cmd, ["--token-file", str(inspector_token)], obj=settings).exit_code
        == 0
    )
    inspector_token.write_text(saved)  # a copy kept somewhere is replayed
    replayed = runner.invoke(search_cmd, search, obj=settings)
    assert replayed.exit_code == EXIT_UNAUTHENTICATED
    assert "logged out" in replayed.output
