"""The web portal over HTTP on the real stack: sessions, CSRF, roles and grants, search, the
dossier page, exports that validate as BagIt bags, grants and audit pages, two languages —
and every refusal answered 401/403 and found in the audit log."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from archive.audit import AuditEvent
from infra.settings import AppSettings as Settings
from portal import AuthThrottle, create_app
from retrieval import Retrieval, validate_zip
from tests.support.pki_service import free_port
from tests.support.portal import PASSWORD, ArchivedSite, archived_site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> ArchivedSite:
    site = archived_site(stack_settings, tmp_path_factory.mktemp("portal"))
    r = Retrieval.open(site.settings)
    now = datetime.now(UTC)
    officer = r.sign_in("ro.binh", PASSWORD, now=now)
    r.issue_grant(
        officer,
        now=now,
        inspector="insp.an",
        case_ref="QĐ 12/QĐ-TTra",
        facility=site.rows[0]["facility"],
        valid_from=now,
        valid_until=now + timedelta(days=2),
    )
    r.index.close()
    return site


@pytest.fixture(scope="module")
def client(site: ArchivedSite) -> Iterator[TestClient]:
    with TestClient(create_app(site.settings), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, user: str, password: str = PASSWORD) -> Response:
    client.cookies.clear()
    response: Response = client.post("/login", data={"username": user, "password": password})
    return response


def csrf(client: TestClient, page: str = "/search") -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(page).text)
    assert match, "page without a CSRF field"
    return match.group(1)


def events(site: ArchivedSite, actor: str, action: str) -> list[AuditEvent]:
    r = Retrieval.open(site.settings)
    try:
        return r.audit.show(actor=actor, action=action)
    finally:
        r.index.close()


def test_inspector_signs_in_finds_views_and_exports(client: TestClient, site: ArchivedSite) -> None:
    row = site.rows[0]
    eid = row["encounter_id"]
    signed = sign_in(client, "insp.an")
    assert (signed.status_code, signed.headers["location"]) == (303, "/search")
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    page = client.get("/search")
    assert "QĐ 12/QĐ-TTra" in page.text  # the inspector sees the grant they work under
    found = client.post("/search", data={"csrf": csrf(client), "encounter": eid})
    assert found.status_code == 200
    assert f'href="/dossier/{eid}"' in found.text
    dossier = client.get(f"/dossier/{eid}")
    assert dossier.status_code == 200
    assert row["retention_class"] in dossier.text
    exported = client.post("/export", data={"csrf": csrf(client), "encounter": eid})
    assert exported.status_code == 200, exported.text[:500]
    assert exported.headers["content-type"] == "application/zip"
    assert "attachment" in exported.headers["content-disposition"]
    bag = zipfile.ZipFile(io.BytesIO(exported.content))
    pdf = next(n for n in bag.namelist() if n.endswith(f"{eid}/discharge-summary.pdf"))
    assert hashlib.sha256(bag.read(pdf)).hexdigest() == row["pdf_sha256"]
    assert hashlib.sha256(exported.content).hexdigest() == exported.headers["x-dossier-sha256"]
    assert not any((site.settings.portal.export_dir or Path("/nonexistent")).iterdir())
    for action in ("retrieval.search", "retrieval.view", "retrieval.export"):
        assert [e.outcome for e in events(site, "insp.an", action)][-1] == "success", action


def test_exported_bag_validates(client: TestClient, site: ArchivedSite, tmp_path: Path) -> None:
    sign_in(client, "insp.an")
    eid = site.rows[0]["encounter_id"]
    exported = client.post("/export", data={"csrf": csrf(client), "encounter": eid})
    path = tmp_path / "dossier.zip"
    path.write_bytes(exported.content)
    assert {"sha256", "sha512"} <= set(validate_zip(path).algorithms)


def test_inspector_without_grant_is_refused_403_and_audited(
    client: TestClient, site: ArchivedSite
) -> None:
    sign_in(client, "insp.khac")
    eid = site.rows[0]["encounter_id"]
    token = csrf(client)
    searched = client.post("/search", data={"csrf": token, "encounter": eid})
    assert searched.status_code == 403
    assert "no active grant" in searched.text
    assert client.get(f"/dossier/{eid}").status_code == 403
    assert client.post("/export", data={"csrf": token, "encounter": eid}).status_code == 403
    for action in ("retrieval.search", "retrieval.view", "retrieval.export"):
        (refused,) = events(site, "insp.khac", action)
        assert (refused.outcome, refused.role) == ("failure", "inspector")


def test_grant_for_another_facility_does_not_cover(client: TestClient, site: ArchivedSite) -> None:
    row, now = site.rows[0], datetime.now(UTC)
    r = Retrieval.open(site.settings)
    officer = r.sign_in("ro.binh", PASSWORD, now=now)
    grant = r.issue_grant(
        officer,
        now=now,
        inspector="insp.tam",
        case_ref="TA-1/2026",
        facility="00000",
        valid_from=now,
        valid_until=now + timedelta(hours=1),
    )
    try:
        sign_in(client, "insp.tam")
        token = csrf(client)
        assert client.get(f"/dossier/{row['encounter_id']}").status_code == 403
        found = client.post("/search", data={"csrf": token, "facility": row["facility"]})
        assert found.status_code == 200
        assert row["encounter_id"] not in found.text
        assert 'id="no-results"' in found.text
    finally:
        r.revoke_grant(officer, grant.grant_id, reason="test done", now=datetime.now(UTC))
        r.index.close()


def test_not_signed_in_is_sent_to_sign_in_and_bad_tokens_get_401(
    client: TestClient, site: ArchivedSite
) -> None:
    client.cookies.clear()
    away = client.get("/search")
    assert (away.status_code, away.headers["location"]) == (303, "/login?next=/search")
    assert client.get("/search", headers={"authorization": "Bearer x.y"}).status_code == 401
    wrong = sign_in(client, "insp.an", "not the password at all")
    assert wrong.status_code == 401
    assert "insp.an" in wrong.text  # the form keeps the name, not the password
    signed = sign_in(client, "insp.an")
    token = signed.cookies["emr_session"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    client.cookies.set("emr_session", tampered)
    assert client.get("/search").status_code == 401
    client.cookies.set("emr_session", token)
    assert client.post("/logout", data={"csrf": csrf(client)}).status_code == 303
    client.cookies.set("emr_session", token)  # a copy kept by someone is replayed
    replayed = client.get("/search")
    assert replayed.status_code == 401
    assert "emr_session=" in replayed.headers.get("set-cookie", "")  # the dead cookie is cleared
    retrieval = client.app.state.portal.retrieval  # type: ignore[attr-defined]
    retrieval.write_refusals(datetime.now(UTC), closing=True)  # the window, counted so far
    forged = [e for e in events(site, "(token)", "auth.token") if e.outcome == "failure"]
    assert any("not valid" in (e.reason or "") for e in forged)
    insp_an = retrieval.tokens.account_pseudonym("insp.an")  # whose token was replayed
    replays = [e for e in events(site, insp_an, "auth.token") if e.outcome == "failure"]
    assert any("logged out" in (e.reason or "") for e in replays)
    assert [e.outcome for e in events(site, insp_an, "auth.login")].count("failure") >= 1


def test_forms_need_the_session_csrf_token_and_the_same_origin(
    client: TestClient, site: ArchivedSite
) -> None:
    sign_in(client, "ro.binh")
    eid = site.rows[0]["encounter_id"]
    assert client.post("/search", data={"csrf": "0" * 64, "encounter": eid}).status_code == 403
    assert client.post("/search", data={"encounter": eid}).status_code == 400
    foreign = client.post(
        "/search",
        data={"csrf": csrf(client), "encounter": eid},
        headers={"origin": "http://evil.example"},
    )
    assert foreign.status_code == 403


def test_records_officer_issues_and_revokes_a_grant(client: TestClient, site: ArchivedSite) -> None:
    eid = site.rows[1]["encounter_id"]
    sign_in(client, "ro.binh")
    issued = client.post(
        "/grants",
        data={
            "csrf": csrf(client, "/grants"),
            "inspector": "insp.tam",
            "case_ref": "TA-55/2026",
            "encounters": eid,
            "days": "3",
        },
    )
    assert issued.status_code == 303
    grant_id = issued.headers["location"].split("issued=")[1]
    assert grant_id in client.get("/grants").text
    sign_in(client, "insp.tam")
    assert client.get(f"/dossier/{eid}").status_code == 200
    assert client.get(f"/dossier/{site.rows[2]['encounter_id']}").status_code == 403  # not named
    own = {"csrf": csrf(client), "inspector": "insp.tam", "case_ref": "self", "facility": "x"}
    assert client.post("/grants", data=own).status_code == 403
    sign_in(client, "ro.binh")
    form = {"csrf": csrf(client, "/grants"), "reason": "case closed"}
    revoked = client.post(f"/grants/{grant_id}/revoke", data=form)
    assert revoked.status_code == 303
    sign_in(client, "insp.tam")
    assert client.get(f"/dossier/{eid}").status_code == 403
    mine = [
        (e.action, e.outcome)
        for e in events(site, "ro.binh", "retrieval.grant")
        if e.detail.get("grant") == grant_id
    ]
    assert mine == [("retrieval.grant.issue", "success"), ("retrieval.grant.revoke", "success")]
    (refused,) = events(site, "insp.tam", "retrieval.grant.issue")
    assert refused.outcome == "failure"


def test_auditor_reads_the_audit_page_but_not_records(
    client: TestClient, site: ArchivedSite
) -> None:
    sign_in(client, "insp.khac")
    client.get(f"/dossier/{site.rows[0]['encounter_id']}")  # refused, audited
    signed = sign_in(client, "audit.lan")
    assert signed.headers["location"] == "/audit"
    page = client.get("/audit", params={"actor": "insp.khac", "action": "retrieval"})
    assert page.status_code == 200
    assert "retrieval.view" in page.text
    assert "outcome-failure" in page.text
    assert (
        client.post("/search", data={"csrf": csrf(client, "/audit"), "encounter": "x"}).status_code
        == 403
    )
    assert client.get("/grants").status_code == 403
    sign_in(client, "insp.an")
    assert client.get("/audit").status_code == 403
    assert events(site, "insp.an", "retrieval.audit.read")[-1].outcome == "failure"


def test_patient_search_keeps_the_id_out_of_pages_logs_and_audit(
    client: TestClient, site: ArchivedSite, caplog: pytest.LogCaptureFixture
) -> None:
    row = site.rows[0]
    patient_id = site.patient_id_of(row)
    name = site.export.names[patient_id]
    wanted = {
        r["encounter_id"] for r in site.rows if r["patient_pseudonym"] == row["patient_pseudonym"]
    }
    sign_in(client, "ro.binh")
    with caplog.at_level(logging.DEBUG):
        found = client.post("/search", data={"csrf": csrf(client), "patient": patient_id})
        sealed = re.search(r'name="patient" value="([^"]+)"', found.text)
        assert sealed, "no patient export button"
        exported = client.post("/export", data={"csrf": csrf(client), "patient": sealed[1]})
    assert found.status_code == 200
    assert exported.status_code == 200
    bag = zipfile.ZipFile(io.BytesIO(exported.content))
    assert {n.split("/")[-2] for n in bag.namelist() if n.endswith(".pdf")} == wanted
    for text in (found.text, caplog.text):
        assert patient_id not in text
        assert name not in text
    search = events(site, "ro.binh", "retrieval.search")[-1]
    assert ("patient", row["patient_pseudonym"]) in search.entities
    forged = client.post("/export", data={"csrf": csrf(client), "patient": sealed[1] + "x"})
    assert forged.status_code == 403


def test_labels_in_vietnamese_and_english_and_security_headers(client: TestClient) -> None:
    client.cookies.clear()
    vi = client.get("/login")
    assert "Đăng nhập" in vi.text
    assert 'lang="vi"' in vi.text
    assert "default-src 'none'" in vi.headers["content-security-policy"]
    assert vi.headers["x-frame-options"] == "DENY"
    assert vi.headers["cache-control"] == "no-store"
    switched = client.get("/lang/en", params={"next": "/login"})
    assert switched.headers["location"] == "/login"
    en = client.get("/login")
    assert "Sign in" in en.text
    assert 'lang="en"' in en.text
    assert client.get("/lang/en", params={"next": "//evil.example"}).headers["location"] == "/"
    client.cookies.clear()


def test_emr_archive_portal_serves_on_loopback(site: ArchivedSite) -> None:
    """The command people run: `emr-archive portal` answers on 127.0.0.1 and stops on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env.update(
        {
            "EMR_ARCHIVE_DATA_DIR": str(site.settings.data_dir),
            "EMR_ARCHIVE_S3__BUCKET": site.settings.s3.bucket,
            "EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(site.settings.catalog_dir),
            "EMR_ARCHIVE_PORTAL__EXPORT_DIR": str(site.settings.portal.export_dir),
            **{
                f"EMR_ARCHIVE_STACK__{k.upper()}": str(v)
                for k, v in site.settings.stack.model_dump().items()
            },
        }
    )
    cli = Path(sys.executable).with_name("emr-archive")
    argv = [str(cli), "portal", "--port", str(port)]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "the portal exited"
            assert time.monotonic() < deadline, "the portal did not answer in 90 s"
            time.sleep(0.3)
        with httpx.Client(base_url=base) as web:
            signed = web.post("/login", data={"username": "ro.binh", "password": PASSWORD})
            assert signed.status_code == 303
            assert web.get("/search").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    # uvicorn shuts down cleanly, then re-raises the signal it got (exit status -15).
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"http://127.0.0.1:{port}/" in output
    assert "POST /login 303" in output  # the portal's own access line: route, not URL
    assert "?" not in "".join(line for line in output.splitlines() if "emr_archive.portal" in line)


def test_an_unexpected_error_answers_500_without_its_message(
    client: TestClient,
    site: ArchivedSite,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in(client, "ro.binh")
    token = csrf(client)
    retrieval = client.app.state.portal.retrieval  # type: ignore[attr-defined]

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("patient 079123456789 Nguyễn Văn A")  # what a library might put there

    monkeypatch.setattr(retrieval, "search", broken)
    with caplog.at_level(logging.INFO):
        failed = client.post("/search", data={"csrf": token, "encounter": "E1"})
    assert failed.status_code == 500
    assert failed.headers["cache-control"] == "no-store"  # the guard's headers are still there
    assert "079123456789" not in failed.text
    assert "079123456789" not in caplog.text
    assert "POST /search failed: KeyError" in caplog.text


def test_a_guessed_account_waits_even_with_the_right_password(
    client: TestClient, site: ArchivedSite
) -> None:
    portal = client.app.state.portal  # type: ignore[attr-defined]
    portal.throttle = AuthThrottle()  # earlier tests' failures do not count here
    limit = portal.throttle.account_limit
    try:
        for _ in range(limit):
            assert sign_in(client, "ro.binh", "wrong password 1234").status_code == 401
        assert sign_in(client, "ro.binh").status_code == 429  # even the right password waits
        assert sign_in(client, "insp.an").status_code == 303  # not its neighbours
    finally:
        portal.throttle = AuthThrottle()
    portal.retrieval.write_refusals(datetime.now(UTC), closing=True)
    ro_binh = portal.retrieval.tokens.account_pseudonym("ro.binh")
    counted = [e for e in events(site, ro_binh, "auth.login") if e.outcome == "failure"]
    assert sum(int(e.detail["count"]) for e in counted) >= limit + 1  # the 429 is counted too
    assert any("TooManyAttempts" in (e.reason or "") for e in counted)


def test_signing_in_again_revokes_the_previous_session(client: TestClient) -> None:
    first = sign_in(client, "insp.an").cookies["emr_session"]
    again = client.post("/login", data={"username": "insp.an", "password": PASSWORD})
    assert again.status_code == 303
    client.cookies.set("emr_session", first)
    assert client.get("/search").status_code == 401
