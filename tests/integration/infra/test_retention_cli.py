"""The records officer's commands end to end (click's runner on the root group, real stack)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archive.pipeline.runlock import RunLock
from archive.render import check_pdfa3b
from infra.cli import cli
from infra.settings import AppSettings as Settings
from retrieval.access import Role
from retrieval.service import Retrieval
from tests.support.retention import Rec, archive_records, wait_until

pytestmark = pytest.mark.integration


PASSWORD = "correct horse battery"


def _run(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=settings, input=stdin)


def _as(user: str, *more: str) -> dict[str, str]:
    """Run as ``user``: the password answers the prompt, then any further prompts."""
    return {"stdin": "\n".join([PASSWORD, *more]) + "\n"}


def _accounts(settings: Settings) -> None:
    r = Retrieval.open(settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.minh", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.minh", PASSWORD, now=now)
    for name, role in (
        ("lan", Role.RECORDS_OFFICER),
        ("binh", Role.RECORDS_OFFICER),
        ("director.binh", Role.FACILITY_HEAD),
        ("insp.an", Role.INSPECTOR),
    ):
        r.add_user(admin, name, role, PASSWORD, now=now)
    r.index.close()


def test_hold_plan_propose_approve_and_audit_from_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon = now + timedelta(seconds=3)
    discharged = datetime(2014, 6, 1, 3, tzinfo=UTC)
    archive_records(
        settings,
        [
            Rec("E-C1", "BN-77", "ordinary", discharged, soon),
            Rec("E-C2", "BN-78", "ordinary", discharged, soon),
        ],
    )
    _accounts(settings)
    hold = ["hold", "add", "--patient", "--case", "TA-1", "--reason", "lawsuit"]
    inspector = _run(settings, *hold, "--as", "insp.an", **_as("insp.an", "BN-77"))
    assert inspector.exit_code == 4, inspector.output  # not a records officer: nothing held
    unknown = _run(settings, *hold, "--by", "lan", stdin="BN-77\n")
    assert unknown.exit_code == 2  # a typed name is no longer accepted
    added = _run(settings, *hold, "--as", "lan", **_as("lan", "BN-77"))
    assert added.exit_code == 0, added.output
    assert "BN-77" not in added.output.split("patient id:")[-1]
    listed = _run(settings, "hold", "list")
    assert "TA-1" in listed.output
    hold_id = listed.output.split()[0]

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"E-C2": {"deceased": True}}))
    plan = _run(settings, "retention", "plan", "--facts", str(facts))
    assert plan.exit_code == 0, plan.output
    assert "death" in plan.output
    assert "extend 1" in plan.output
    # An archive run in progress: the officer's apply and a new hold are refused, retry code
    run = RunLock.acquire(settings.catalog_dir, run_id="nightly-busy", now=now)
    try:
        busy = _run(
            settings, "retention", "apply", "--facts", str(facts), "--as", "lan", **_as("lan")
        )
        later = ["hold", "add", "--encounter", "E-C2", "--case", "TA-2", "--reason", "r"]
        held_busy = _run(settings, *later, "--as", "lan", **_as("lan"))
    finally:
        run.release()
    assert (busy.exit_code, held_busy.exit_code) == (75, 75), busy.output + held_busy.output
    assert "nightly-busy" in busy.output
    assert "extend 1" in _run(settings, "retention", "plan", "--facts", str(facts)).output
    assert "TA-2" not in _run(settings, "hold", "list").output

    wait_until(soon)
    proposed = _run(settings, "disposition", "propose", "--as", "lan", **_as("lan"))
    assert proposed.exit_code == 0, proposed.output
    assert "left out, on hold: 1" in proposed.output
    found = re.search(r"proposal (\S+):", proposed.output)
    assert found, proposed.output
    proposal_id = found[1]
    refused = _run(settings, "disposition", "approve", proposal_id, "--as", "lan", **_as("lan"))
    assert refused.exit_code == 2
    assert "another person" in refused.output
    out = tmp_path / "minutes.pdf"
    approved = _run(
        settings,
        "disposition",
        "approve",
        proposal_id,
        "--as",
        "director.binh",
        "--minutes-out",
        str(out),
        **_as("director.binh"),
    )
    assert approved.exit_code == 0, approved.output
    assert "destroyed 1 records" in approved.output
    assert check_pdfa3b(out.read_bytes()).passed

    removed = _run(
        settings, "hold", "remove", hold_id, "--reason", "closed", "--as", "lan", **_as("lan")
    )
    assert removed.exit_code == 0, removed.output
    assert hold_id in _run(settings, "hold", "list").output  # requested, not yet released
    confirmed = _run(settings, "hold", "confirm-release", hold_id, "--as", "binh", **_as("binh"))
    assert confirmed.exit_code == 0, confirmed.output
    assert "no active holds" in _run(settings, "hold", "list").output
    shown = _run(settings, "audit", "show", "--action", "hold")
    assert shown.output.count("hold.") == 3
    refusals = _run(settings, "audit", "show", "--actor", "insp.an", "--action", "auth")
    assert "auth.retention" in refusals.output
    verified = _run(settings, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert verified.output.count("ok") == 3
