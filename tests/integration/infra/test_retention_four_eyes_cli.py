"""Four eyes from the command line (real stack): a sweep proposal needs a records officer's
confirmation and a facility head's (or delegate's) approval, two different people; a legal hold
is released only when a second person confirms the first one's request. Refusals are audited."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from archive import wiring
from archive.render import check_pdfa3b
from infra.cli import cli
from infra.settings import AppSettings as Settings
from retention import SWEEP, RetentionParts
from retention.minutes import embedded_listing
from retrieval.access import Role
from retrieval.service import Retrieval
from tests.support.retention import Rec, archive_records, lock_of, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
DISCHARGED = datetime(2014, 6, 1, 3, tzinfo=UTC)


def _run(settings: Settings, *args: str, user: str) -> Result:
    """Run as ``user``: the password answers the prompt."""
    return CliRunner().invoke(cli, [*args, "--as", user], obj=settings, input=PASSWORD + "\n")


def _accounts(settings: Settings, *extra: tuple[str, Role]) -> None:
    r = Retrieval.open(settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.minh", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.minh", PASSWORD, now=now)
    for name, role in (("lan", Role.RECORDS_OFFICER), ("binh", Role.RECORDS_OFFICER), *extra):
        r.add_user(admin, name, role, PASSWORD, now=now)
    r.index.close()


def test_one_officer_alone_can_neither_release_a_hold_nor_approve_a_sweep_proposal(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon = now + timedelta(seconds=3)
    rows = archive_records(
        settings,
        [
            Rec("E-F1", "BN-91", "ordinary", DISCHARGED, soon),
            Rec("E-F2", "BN-92", "ordinary", DISCHARGED, soon),
        ],
    )
    key = {r.encounter_id: r.object_key for r in rows}
    store = wiring.open_store(settings)
    _accounts(settings, ("director.binh", Role.FACILITY_HEAD), ("insp.an", Role.INSPECTOR))
    added = _run(
        settings,
        "hold",
        "add",
        "--encounter",
        "E-F2",
        "--case",
        "TA-9",
        "--reason",
        "x",
        user="lan",
    )
    assert added.exit_code == 0, added.output
    hold_id = re.findall(r"hold (\S+):", added.output)[0]
    removed = _run(settings, "hold", "remove", hold_id, "--reason", "closed", user="lan")
    assert removed.exit_code == 0, removed.output
    assert all(held for _, held in lock_of(store, key["E-F2"]))
    listed = CliRunner().invoke(cli, ["hold", "list"], obj=settings)
    assert hold_id in listed.output  # one person asked; the hold stands
    assert "release requested by lan" in listed.output
    alone = _run(settings, "hold", "confirm-release", hold_id, user="lan")
    assert alone.exit_code == 2, alone.output
    assert "different person" in alone.output
    inspector = _run(settings, "hold", "confirm-release", hold_id, user="insp.an")
    assert inspector.exit_code == 4, inspector.output  # not a role that releases holds
    assert all(held for _, held in lock_of(store, key["E-F2"]))
    second = _run(settings, "hold", "confirm-release", hold_id, user="binh")
    assert second.exit_code == 0, second.output
    assert not any(held for _, held in lock_of(store, key["E-F2"]))

    wait_until(soon)
    proposal = RetentionParts.open(settings).propose(by=SWEEP, now=datetime.now(UTC))
    assert proposal is not None
    pid = proposal.proposal_id
    unconfirmed = _run(settings, "disposition", "approve", pid, user="director.binh")
    assert unconfirmed.exit_code == 2, unconfirmed.output
    assert "nobody has confirmed" in unconfirmed.output
    confirmed = _run(settings, "disposition", "confirm", pid, user="lan")
    assert confirmed.exit_code == 0, confirmed.output
    for who, why in (("lan", "another person"), ("binh", "facility head or a delegate")):
        refused = _run(settings, "disposition", "approve", pid, user=who)
        assert refused.exit_code == 2, refused.output
        assert why in refused.output
    assert all(lock_of(store, k) for k in key.values())  # nothing destroyed so far

    out = tmp_path / "minutes.pdf"
    approved = CliRunner().invoke(
        cli,
        ["disposition", "approve", pid, "--as", "director.binh", "--minutes-out", str(out)],
        obj=settings,
        input=PASSWORD + "\n",
    )
    assert approved.exit_code == 0, approved.output
    assert "destroyed 2 records" in approved.output
    assert not any(lock_of(store, k) for k in key.values())
    pdf = out.read_bytes()
    assert check_pdfa3b(pdf).passed
    people = {e["url"].split("#")[1]: e["valueString"] for e in embedded_listing(pdf)["extension"]}
    assert (people["proposed-by"], people["confirmed-by"]) == ("retention-sweep", "lan")
    assert (people["approved-by"], people["approved-role"]) == ("director.binh", "facility-head")

    audit = RetentionParts.open(settings).audit
    refusals = [
        (e.action, e.actor, e.role)
        for e in audit.show()
        if e.outcome == "failure" and e.action.startswith(("hold", "disposition", "auth.ret"))
    ]
    assert refusals == [
        ("hold.remove", "lan", "records-officer"),
        ("auth.retention", "insp.an", "inspector"),
        ("disposition.approve", "director.binh", "facility-head"),
        ("disposition.approve", "lan", "records-officer"),
        ("disposition.approve", "binh", "records-officer"),
    ]
    assert audit.verify_chain().passed
