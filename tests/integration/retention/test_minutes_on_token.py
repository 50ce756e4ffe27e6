"""Destruction minutes signed with the hospital's key on a PKCS#11 token (SoftHSM2).

The settings name the token and no PKCS#12 at all, so whatever they sign, the token signed. A
token missing when the approval starts destroys nothing; a token pulled between the deletions
and the signature leaves the approval to be run again, which writes the minutes once a token with
the same key is back.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from archive import wiring
from archive.core.errors import SigningError
from archive.render import check_pdfa3b
from archive.sign import validate_pdf_signatures
from archive.sign.certificates import cert_sha256
from archive.sign.config import load_certificates
from archive.sign.report import Kind
from archive.store import S3ObjectStore
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from retention.disposition import Outcome, approve
from retention.errors import RetentionError
from retention.minutes import MINUTES_PREFIX, MinutesWriter, embedded_listing, read_minutes
from retention.parts import RetentionParts
from retention.people import Actor
from tests.support.retention import Rec, RecordingStore, archive_records, wait_until
from tests.support.softhsm import SoftToken, settings_on_token, signer_on_token, token_dir

pytestmark = pytest.mark.integration

DISCHARGED = datetime(2014, 5, 1, 3, tzinfo=UTC)
LAN, HEAD = Actor("lan", "records-officer"), Actor("director.binh", "facility-head")


def _on_new_token(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> tuple[Settings, SoftToken]:
    """``settings`` with the development signer's key on a token of its own (a fresh label)."""
    pki = DevPki(settings.pki_dir, settings.stack.pki_port)
    token, _ = signer_on_token(tmp_path_factory, pki.signer)
    return settings_on_token(settings, token), token


def _expired(settings: Settings, *ids: str) -> RetentionParts:
    """Records ``ids`` archived and expired a few seconds later; the parts to dispose of them."""
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    archive_records(settings, [Rec(e, f"P-{e}", "ordinary", DISCHARGED, soon) for e in ids])
    wait_until(soon)
    return RetentionParts.open(
        settings, store=RecordingStore(S3ObjectStore.from_settings(settings))
    )


def _touched(parts: RetentionParts) -> list[tuple[str, str, str]]:
    """What the store was asked to do to records or minutes (register and audit writes aside)."""
    assert isinstance(parts.store, RecordingStore)
    calls = parts.store.calls
    return [c for c in calls if c[0] == "delete_version" or c[1].startswith(MINUTES_PREFIX)]


def _approve(parts: RetentionParts, proposal_id: str, writer: MinutesWriter) -> Outcome:
    return approve(
        proposal_id,
        by=HEAD,
        catalog_rows=parts.catalog.rows(),
        register=parts.register,
        audit=parts.audit,
        policy=parts.policy,
        write_minutes=writer,
        now=datetime.now(UTC),
    )


def test_a_token_missing_when_the_approval_starts_destroys_nothing(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> None:
    on_token, token = _on_new_token(tmp_path_factory, settings)
    parts = _expired(on_token, "E-TOK-A")
    proposal = parts.propose(by=LAN, now=datetime.now(UTC))
    assert proposal is not None
    shutil.rmtree(token_dir(token))  # pulled out before the approval
    with pytest.raises(SigningError, match="no such token"):
        _approve(parts, proposal.proposal_id, parts.minutes_writer())
    assert _touched(parts) == []  # not one version deleted, no minutes stored
    assert parts.register.destroyed_encounters() == set()


def test_minutes_are_signed_on_the_token_and_a_token_pulled_mid_approval_resumes(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings
) -> None:
    on_token, token = _on_new_token(tmp_path_factory, settings)
    parts = _expired(on_token, "E-TOK-1", "E-TOK-2")
    proposal = parts.propose(by=LAN, now=datetime.now(UTC))
    assert proposal is not None
    writer = parts.minutes_writer()
    writer.ready()  # the token's session is open
    shutil.rmtree(token_dir(token))  # pulled out between the deletions and the signature
    with pytest.raises(RetentionError, match="run the same `emr-archive disposition approve`"):
        _approve(parts, proposal.proposal_id, writer)
    assert [c[0] for c in _touched(parts)] == ["delete_version"] * 2  # no minutes unsigned

    # The hospital plugs in a token with the same key (here: a new token, the same key on it).
    back, _ = _on_new_token(tmp_path_factory, settings)
    real = wiring.open_store(back)
    resumed = RetentionParts.open(back, store=real)
    outcome = _approve(resumed, proposal.proposal_id, resumed.minutes_writer())
    assert {i.encounter_id for i in outcome.destroyed} == {"E-TOK-1", "E-TOK-2"}
    pdf = read_minutes(real, resumed.keyring(), back, outcome.minutes, proposal.proposal_id)
    assert check_pdfa3b(pdf).passed, check_pdfa3b(pdf).reason
    report = validate_pdf_signatures(pdf, trust=wiring.trust_policy(back))
    assert report.passed, report.reason
    pki = DevPki(settings.pki_dir, settings.stack.pki_port)
    hospital = load_certificates(pki.cert_path("hospital-signer"))[0]
    signers = {c.signer_cert_sha256 for c in report.checks if c.kind is Kind.SIGNATURE}
    assert signers == {cert_sha256(hospital)}
    listed = {e["item"]["identifier"]["value"] for e in embedded_listing(pdf)["entry"]}
    assert listed == {"E-TOK-1", "E-TOK-2"}
    assert resumed.register.destroyed_encounters() == {"E-TOK-1", "E-TOK-2"}
