"""Disposition on the real stack: only expired, unheld, unlinked records are proposed; approval by
another person deletes every version and leaves signed PDF/A minutes that match the listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archive import wiring
from archive.render import check_pdfa3b
from archive.sign import validate_pdf_signatures
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from retention.disposition import Outcome, approve, confirm
from retention.errors import RetentionError
from retention.holds import HoldScope, place_hold
from retention.minutes import embedded_listing, read_minutes
from retention.parts import RetentionParts
from retention.people import SWEEP, Actor
from tests.support.retention import (
    Rec,
    RecordingStore,
    add_version,
    archive_records,
    lock_of,
    wait_until,
)

pytestmark = pytest.mark.integration

DISCHARGED = datetime(2014, 5, 1, 3, tzinfo=UTC)
LINKED = "linked to a longer-retention dossier"
LAN, HEAD = Actor("lan", "records-officer"), Actor("director.binh", "facility-head")


def test_expired_records_are_destroyed_with_signed_minutes(settings: Settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, far = now + timedelta(seconds=4), now + timedelta(days=2)
    rows = archive_records(
        settings,
        [
            Rec("E-EXP-1", "P1", "ordinary", DISCHARGED, soon),
            Rec("E-EXP-2", "P2", "ordinary", DISCHARGED, soon),
            Rec("E-HELD", "P3", "ordinary", DISCHARGED, soon),
            Rec("E-LIVE", "P4", "ordinary", DISCHARGED, far),
            Rec("E-LINKED", "P5", "ordinary", DISCHARGED, soon),
            Rec("E-DEATH", "P5", "death", DISCHARGED, far),
        ],
    )
    key = {r.encounter_id: r.object_key for r in rows}
    real = S3ObjectStore.from_settings(settings)
    add_version(real, key["E-EXP-2"], soon)  # a renewed record: two versions to destroy
    store = RecordingStore(real)
    parts = RetentionParts.open(settings, store=store)
    place_hold(
        HoldScope(encounter_ids=("E-HELD",)),
        case_ref="TA-12/2026",
        reason="lawsuit",
        by=LAN,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        now=now,
        tz=parts.tz,
    )
    wait_until(soon)

    proposal = parts.propose(by=LAN, now=datetime.now(UTC))
    assert proposal is not None
    assert {i.encounter_id for i in proposal.items} == {"E-EXP-1", "E-EXP-2"}
    assert proposal.excluded == {"on hold": 1, LINKED: 1}
    assert proposal.totals() == {"ordinary": 2}
    assert b"P1" not in proposal.encode()  # pseudonyms only

    def approve_as(by: Actor) -> Outcome:
        return approve(
            proposal.proposal_id,
            by=by,
            catalog_rows=parts.catalog.rows(),
            register=parts.register,
            audit=parts.audit,
            policy=parts.policy,
            write_minutes=parts.minutes_writer(),
            now=datetime.now(UTC),
        )

    for same in ("lan", " LAN "):
        with pytest.raises(RetentionError, match="another person"):
            approve_as(Actor(same, "facility-head"))
    assert store.deleted_keys() == set()

    outcome = approve_as(HEAD)
    assert {i.encounter_id for i in outcome.destroyed} == {"E-EXP-1", "E-EXP-2"}
    assert store.deleted_keys() == {key["E-EXP-1"], key["E-EXP-2"]}
    assert len([c for c in store.calls if c[0] == "delete_version"]) == 3
    assert lock_of(real, key["E-EXP-1"]) == []
    assert lock_of(real, key["E-EXP-2"]) == []
    for kept in ("E-HELD", "E-LIVE", "E-LINKED", "E-DEATH"):
        assert lock_of(real, key[kept])

    pdf = read_minutes(real, parts.keyring(), settings, outcome.minutes, proposal.proposal_id)
    assert check_pdfa3b(pdf).passed, check_pdfa3b(pdf).reason
    report = validate_pdf_signatures(pdf, trust=wiring.trust_policy(settings))
    assert report.passed, report.reason
    listing = embedded_listing(pdf)
    by_id = {r.encounter_id: r for r in rows}
    for entry in listing["entry"]:
        eid = entry["item"]["identifier"]["value"]
        ext = {e["url"].split("#")[1]: e["valueString"] for e in entry["extension"]}
        assert ext["patient-pseudonym"] == by_id[eid].patient_pseudonym
        assert ext["sealed-sha256"] == by_id[eid].sealed_sha256
    assert {e["item"]["identifier"]["value"] for e in listing["entry"]} == {"E-EXP-1", "E-EXP-2"}
    people = {e["url"].split("#")[1]: e["valueString"] for e in listing["extension"]}
    assert (people["proposed-by"], people["approved-by"]) == ("lan", "director.binh")
    minutes_lock = real.head(outcome.minutes["key"], version_id=outcome.minutes["version_id"]).lock
    assert minutes_lock.retain_until is not None
    assert minutes_lock.retain_until.year >= now.year + 99  # the permanent horizon

    assert parts.register.destroyed_encounters() == {"E-EXP-1", "E-EXP-2"}
    assert (key["E-EXP-2"], rows[1].version_id) in parts.register.destroyed_versions()
    with pytest.raises(RetentionError, match="already carried out"):
        approve_as(HEAD)
    assert parts.propose(by=LAN, now=datetime.now(UTC)) is None  # nothing left to propose
    assert parts.audit.verify_chain().passed
    actions = [(e.action, e.outcome) for e in parts.audit.show(action="disposition")]
    assert actions == [
        ("disposition.propose", "success"),
        ("disposition.approve", "failure"),  # lan, then " LAN ": one person twice
        ("disposition.approve", "failure"),
        ("disposition.destroy", "success"),
        ("disposition.approve", "failure"),  # already carried out
    ]


def test_a_hold_placed_after_the_proposal_blocks_the_deletion(settings: Settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon = now + timedelta(seconds=3)
    rows = archive_records(settings, [Rec("E-LATE", "P9", "ordinary", DISCHARGED, soon)])
    real = S3ObjectStore.from_settings(settings)
    store = RecordingStore(real)
    parts = RetentionParts.open(settings, store=store)
    wait_until(soon)
    proposal = parts.propose(by=SWEEP, now=datetime.now(UTC))
    assert proposal is not None
    confirm(
        proposal.proposal_id,
        by=LAN,
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
    )
    place_hold(
        HoldScope(encounter_ids=("E-LATE",)),
        case_ref="C-1",
        reason="inspection",
        by=LAN,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        now=datetime.now(UTC),
        tz=parts.tz,
    )
    outcome = approve(
        proposal.proposal_id,
        by=HEAD,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        policy=parts.policy,
        write_minutes=parts.minutes_writer(),
        now=datetime.now(UTC),
    )
    assert outcome.destroyed == ()
    assert outcome.skipped == {"E-LATE": "on hold"}
    assert store.deleted_keys() == set()
    assert lock_of(real, rows[0].object_key)[0][1] is True
