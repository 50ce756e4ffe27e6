"""Regression: the access register was never verified outside tests, so a forged grant or a
rolled-back revocation went unnoticed by ``audit verify``, the portal and the verification run.
Each now checks the register local <-> bucket and refuses (exit 1, no start, a failed check)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from archive import wiring
from archive.core.errors import AuditChainError
from flows.verify import start_verification
from infra.cli import cli
from infra.settings import AppSettings as Settings
from portal import create_app
from retrieval.access import AccessRegister, access_dir
from tests.support.chains import forge_next_segment
from verification.config import VerificationSettings
from verification.results import Status
from verification.run import RunPlan
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
GRANT: dict[str, object] = {
    "type": "grant.issued",
    "grant_id": "g-1",
    "inspector": "insp.an",
    "facility": "79001",
    "encounter_ids": [],
    "patient_pseudonym": None,
    "valid_from": NOW.isoformat(),
    "valid_until": (NOW + timedelta(days=30)).isoformat(),
    "issued_by": "lan",
    "case_ref": "TT-1/2026",
}


def _roll_back_a_revocation(settings: Settings) -> None:
    access = AccessRegister.for_settings(settings, wiring.open_store(settings))
    access.append(GRANT, now=NOW)
    kept = (access_dir(settings) / "HEAD").read_bytes()
    access.append({"type": "grant.revoked", "grant_id": "g-1"}, now=NOW)
    (access_dir(settings) / "segments" / "0000000002.jsonl").unlink()
    (access_dir(settings) / "HEAD").write_bytes(kept)


def test_audit_verify_fails_on_a_forged_access_register_segment(settings: Settings) -> None:
    access = AccessRegister.for_settings(settings, wiring.open_store(settings))
    access.append({"type": "grant.revoked", "grant_id": "g-0"}, now=NOW)
    verified = CliRunner().invoke(cli, ["audit", "verify"], obj=settings)
    assert verified.exit_code == 0, verified.output
    assert "access register" in verified.output

    forge_next_segment(access_dir(settings), {**GRANT, "grant_id": "g-back"}, move_head=True)
    refused = CliRunner().invoke(cli, ["audit", "verify"], obj=settings)
    assert refused.exit_code == 1, refused.output
    assert "FAIL access register" in refused.output


def test_the_portal_refuses_to_start_on_a_rolled_back_access_register(settings: Settings) -> None:
    _roll_back_a_revocation(settings)
    with pytest.raises(AuditChainError, match="access register"), TestClient(create_app(settings)):
        pass
    started = CliRunner().invoke(cli, ["portal", "--port", "14399"], obj=settings)
    assert started.exit_code != 0
    assert "access register" in started.output
    assert "Traceback" not in started.output


def test_a_verification_run_fails_on_a_rolled_back_access_register(
    settings: Settings, tmp_path: Path
) -> None:
    _roll_back_a_revocation(settings)
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(settings, vsettings, selection=Selection(mode=Mode.FULL), now=NOW)
    with start_verification.fn(settings, vsettings, plan) as run:
        summary = run.finish()
    assert summary.status is Status.FAILED
    failed = {c.reason_code for c in summary.archive_checks if c.status is Status.FAILED}
    assert failed == {"access-register.chain_broken"}
