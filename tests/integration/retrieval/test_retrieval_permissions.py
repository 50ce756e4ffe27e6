"""The retrieval access-control matrix on the real stack, and that every attempt is audited.

Through :class:`retrieval.service.Retrieval` on SeaweedFS with Object Lock and the real PKI, this
module proves:

* role x action: records officer, inspector with an active grant, inspector without one, auditor
  and admin each try search, view, export, issue_grant, revoke_grant, audit_events and add_user.
  What the table in ``retrieval/access/roles.py`` allows succeeds (and does what it says); the rest
  raises :class:`AccessDeniedError` (HTTP 403) and changes nothing. Every attempt, allowed or
  refused, leaves exactly one audit event with the actor, role, action name and outcome;
* grants bound an inspector: an expired grant (issued in the past, or lapsed at ``valid_until``),
  a grant for another facility and a revoked grant are refused, and audited;
* a tampered, expired or logged-out (replayed) token raises :class:`AuthenticationError` (401),
  audited as ``auth.token`` failure without the token itself;
* a wrong password and an unknown user are refused alike and audited as ``auth.login`` failure
  that says nothing about which part was wrong, and never holds the typed password;
* once accounts exist, the unauthenticated bootstrap of add_user is refused and audited;
* the audit log the events went to verifies against its locked bucket copies.

Archiving costs seconds, so one small window is archived once for the module and every test
works on it with users of its own (audit events are counted per actor and action, before and
after each attempt, so tests do not depend on each other's events).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_encode

from archive.audit import AuditEvent, AuditLog
from archive.catalog import Catalog
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from retrieval.access import (
    PERMISSIONS,
    TOKEN_TTL,
    AccessDeniedError,
    Action,
    AuthenticationError,
    Grant,
    Principal,
    Role,
)
from retrieval.service import Query, Retrieval
from tests.support.nightly import Export, make_export, run_once

pytestmark = pytest.mark.integration

PASSWORD: Final = "correct horse battery"
T = TypeVar("T")

# --- the expected matrix -------------------------------------------------------------------------

# Who tries, as (username, role). "inspector-granted" holds a facility grant covering the record
# under test; "inspector-ungranted" holds none at all.
ACTORS: Final = {
    "records-officer": ("ro.perm", Role.RECORDS_OFFICER),
    "inspector-granted": ("insp.granted", Role.INSPECTOR),
    "inspector-ungranted": ("insp.nogrant", Role.INSPECTOR),
    "auditor": ("aud.perm", Role.AUDITOR),
    "admin": ("admin.perm", Role.ADMIN),
}
# What each attempt is audited as, and the permission it needs.
AUDIT_ACTION: Final = {
    "search": "retrieval.search",
    "view": "retrieval.view",
    "export": "retrieval.export",
    "issue_grant": "retrieval.grant.issue",
    "revoke_grant": "retrieval.grant.revoke",
    "audit_events": "retrieval.audit.read",
    "add_user": "user.add",
}
NEEDS: Final = {
    "search": Action.SEARCH,
    "view": Action.VIEW,
    "export": Action.EXPORT,
    "issue_grant": Action.GRANT_MANAGE,
    "revoke_grant": Action.GRANT_MANAGE,
    "audit_events": Action.AUDIT_READ,
    "add_user": Action.USER_MANAGE,
}
RECORD_ATTEMPTS: Final = frozenset({"search", "view", "export"})
# Written out by hand from the access.py docstring: the oracle must not be the code under test.
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "records-officer": frozenset({"search", "view", "export", "issue_grant", "revoke_grant"}),
    "inspector-granted": RECORD_ATTEMPTS,
    "inspector-ungranted": frozenset(),
    "auditor": frozenset({"audit_events"}),
    "admin": frozenset({"audit_events", "add_user"}),
}


# --- the archived world --------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    settings: Settings
    r: Retrieval
    audit: AuditLog  # a second handle: it sees only what the service flushed, not its buffer
    eid: str  # a record of `facility`
    facility: str
    other_facility: str  # has records too, but not `eid`
    actors: dict[str, Principal]  # ACTORS key -> signed-in principal
    officer: Principal

    def sign_in(self, username: str) -> Principal:
        return self.r.sign_in(username, PASSWORD, now=datetime.now(UTC))

    def grant(self, inspector: str, *, now: datetime, **scope: Any) -> Grant:
        """A grant the records officer issues (``scope``: facility, validity, ...)."""
        scope.setdefault("valid_from", now)
        scope.setdefault("valid_until", now + timedelta(hours=1))
        return self.r.issue_grant(
            self.officer, now=now, inspector=inspector, case_ref="QD-perm/2026", **scope
        )


@pytest.fixture(scope="module")
def world_settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Like integration/conftest.py's ``settings``, once per module: own bucket and catalog."""
    base = tmp_path_factory.mktemp("permissions")
    changed = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": f"perm-{secrets.token_hex(4)}"}),
            "catalog": stack_settings.catalog.model_copy(update={"catalog_dir": base / "catalog"}),
            "archive": stack_settings.archive.model_copy(update={"workers": 1}),
        }
    )
    S3ObjectStore.from_settings(changed).create_locked_bucket()
    return changed


@pytest.fixture(scope="module")
def world(world_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # 10 encounters with seed 1 archive 3 good records over two facilities (the rest are planted
    # bad or outside the window): enough for "another facility", and exports stay cheap.
    export: Export = make_export(tmp_path_factory.mktemp("export"), encounters=10, seed=1)
    assert run_once(world_settings, export).archived
    rows = Catalog.open(world_settings.catalog_dir).rows().to_pylist()
    by_facility: dict[str, list[str]] = {}
    for row in rows:
        by_facility.setdefault(row["facility"], []).append(row["encounter_id"])
    assert len(by_facility) >= 2, f"the sample needs two facilities, got {by_facility}"
    facility, other_facility = sorted(by_facility)[:2]

    r = Retrieval.open(world_settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.perm", Role.ADMIN, PASSWORD, now=now)  # bootstrap
    admin = r.sign_in("admin.perm", PASSWORD, now=now)
    others = [(name, role) for name, role in ACTORS.values() if role is not Role.ADMIN]
    # Inspectors of their own for the grant scenarios, and one only ever named in grants.
    spare = ("insp.target", "insp.expired", "insp.lapsing", "insp.elsewhere", "insp.revoked")
    others += [(name, Role.INSPECTOR) for name in spare]
    for name, role in others:
        r.add_user(admin, name, role, PASSWORD, now=now)
    actors = {key: r.sign_in(name, PASSWORD, now=now) for key, (name, _) in ACTORS.items()}
    officer = actors["records-officer"]
    r.issue_grant(
        officer,
        now=now,
        inspector="insp.granted",
        case_ref="QD-perm/2026",
        facility=facility,
        valid_from=now - timedelta(minutes=1),
        valid_until=now + timedelta(days=1),
    )
    audit = AuditLog.for_settings(world_settings, S3ObjectStore.from_settings(world_settings))
    yield World(
        world_settings,
        r,
        audit,
        by_facility[facility][0],
        facility,
        other_facility,
        actors,
        officer,
    )
    r.index.close()


@contextmanager
def audited(w: World, actor: str, action: str) -> Iterator[list[AuditEvent]]:
    """The audit events of ``actor`` and ``action`` appended while the block ran."""
    before = len(w.audit.show(actor=actor, action=action))
    new: list[AuditEvent] = []
    yield new
    new.extend(w.audit.show(actor=actor, action=action)[before:])


def expect(allowed: bool, call: Callable[[], T]) -> T | None:
    """``call()`` when allowed; else assert it is refused with 403 and return None."""
    if allowed:
        return call()
    with pytest.raises(AccessDeniedError):
        call()
    return None


def assert_one(events: list[AuditEvent], *, role: str, outcome: str, now: datetime) -> AuditEvent:
    """Exactly one event for the attempt, stamped with its clock, role and outcome."""
    assert [(e.role, e.outcome, e.recorded) for e in events] == [(role, outcome, now)]
    if outcome == "failure":
        assert events[0].reason is not None  # a refusal says why, for whoever reviews the log
    return events[0]


# --- the attempts: each checks what an allowed call did, or that a refused one changed nothing ---

Attempt = Callable[[World, Principal, datetime, Path, bool], None]


def try_search(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    result = expect(allowed, lambda: w.r.search(p, Query(encounter_id=w.eid), now=now))
    if result is not None:
        (hit,) = result.hits
        assert hit.encounter_id == w.eid
        # Only records officers see which patient a record belongs to.
        assert (hit.patient_pseudonym is not None) == (p.role is Role.RECORDS_OFFICER)


def try_view(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    hits = expect(allowed, lambda: w.r.view(p, w.eid, now=now))
    if hits is not None:
        assert [h.encounter_id for h in hits] == [w.eid]


def try_export(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    out = tmp / "dossiers"
    result = expect(allowed, lambda: w.r.export(p, out_dir=out, now=now, encounter_id=w.eid))
    if result is None:
        assert not out.exists()  # refused before anything was written
    else:
        assert [(d.encounter_id, d.status) for d in result.documents] == [(w.eid, "passed")]
        assert result.path.parent == out
        assert result.path.is_file()


def try_issue_grant(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    before = set(w.r.access.grants())
    grant = expect(
        allowed,
        lambda: w.r.issue_grant(
            p,
            now=now,
            inspector="insp.target",
            case_ref="QD-matrix/2026",
            facility=w.facility,
            valid_from=now,
            valid_until=now + timedelta(hours=1),
        ),
    )
    added = set(w.r.access.grants()) - before
    assert added == (set() if grant is None else {grant.grant_id})


def try_revoke_grant(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    # A fresh grant each time, so an allowed revocation has one to revoke and a refusal is for the
    # role, not for a missing grant. (Issuing is audited as grant.issue: not what is counted here.)
    grant = w.grant("insp.target", now=now, facility=w.facility)
    expect(allowed, lambda: w.r.revoke_grant(p, grant.grant_id, reason="matrix", now=now))
    assert (grant.grant_id in w.r.access.grants()) is not allowed


def try_audit_events(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    events = expect(
        allowed, lambda: w.r.audit_events(p, now=now, actor=p.username, action="auth.login")
    )
    if events is not None:  # at least the reader's own sign-in, and only what was asked for
        assert events
        assert {(e.actor, e.action) for e in events} == {(p.username, "auth.login")}


def try_add_user(w: World, p: Principal, now: datetime, tmp: Path, allowed: bool) -> None:
    name = f"new.{secrets.token_hex(4)}"
    expect(allowed, lambda: w.r.add_user(p, name, Role.AUDITOR, PASSWORD, now=now))
    user = w.r.users.get(name)
    assert (None if user is None else user.role) == (Role.AUDITOR if allowed else None)


ATTEMPTS: Final[dict[str, Attempt]] = {
    "search": try_search,
    "view": try_view,
    "export": try_export,
    "issue_grant": try_issue_grant,
    "revoke_grant": try_revoke_grant,
    "audit_events": try_audit_events,
    "add_user": try_add_user,
}


def test_expected_matrix_is_the_documented_permission_table() -> None:
    # If PERMISSIONS changes, the matrix below must be re-decided, not silently follow it.
    for who, (_, role) in ACTORS.items():
        declared = {what for what, needed in NEEDS.items() if needed in PERMISSIONS[role]}
        if who == "inspector-ungranted":
            declared -= RECORD_ATTEMPTS  # an inspector's record actions need an active grant
        assert ALLOWED[who] == declared, who
    assert set(ATTEMPTS) == set(AUDIT_ACTION) == set(NEEDS)


@pytest.mark.parametrize(
    ("who", "what"),
    [pytest.param(who, what, id=f"{who}:{what}") for who in ACTORS for what in ATTEMPTS],
)
def test_role_action_matrix_is_enforced_and_audited(
    world: World, tmp_path: Path, who: str, what: str
) -> None:
    p, allowed, now = world.actors[who], what in ALLOWED[who], datetime.now(UTC)
    with audited(world, p.username, AUDIT_ACTION[what]) as events:
        ATTEMPTS[what](world, p, now, tmp_path, allowed)
    event = assert_one(
        events, role=p.role.value, now=now, outcome="success" if allowed else "failure"
    )
    if not allowed:
        assert (event.reason or "").startswith("AccessDeniedError")
    if what in RECORD_ATTEMPTS:  # what was asked for is on record, refused or not
        assert ("encounter", world.eid) in event.entities


# --- grants --------------------------------------------------------------------------------------


def test_a_grant_that_ended_before_now_is_refused_and_audited(world: World) -> None:
    now = datetime.now(UTC)
    ended = now - timedelta(days=1)
    world.grant(
        "insp.expired",
        now=now,
        facility=world.facility,
        valid_from=ended - timedelta(days=1),
        valid_until=ended,
    )
    inspector = world.sign_in("insp.expired")
    with (
        audited(world, "insp.expired", "retrieval.search") as events,
        pytest.raises(AccessDeniedError, match="no active grant"),
    ):
        world.r.search(inspector, Query(encounter_id=world.eid), now=now)
    assert_one(events, role="inspector", outcome="failure", now=now)


def test_a_grant_lapses_at_valid_until(world: World) -> None:
    now = datetime.now(UTC)
    until = now + timedelta(hours=1)
    grant = world.grant("insp.lapsing", now=now, facility=world.facility, valid_until=until)
    inspector = world.sign_in("insp.lapsing")
    with audited(world, "insp.lapsing", "retrieval.view") as before_end:
        world.r.view(inspector, world.eid, now=now)  # the grant works while it runs
    event = assert_one(before_end, role="inspector", outcome="success", now=now)
    assert event.detail["grants"] == grant.grant_id
    with (
        audited(world, "insp.lapsing", "retrieval.view") as at_end,
        pytest.raises(AccessDeniedError, match="no active grant"),
    ):
        world.r.view(inspector, world.eid, now=until)  # valid_until is exclusive
    assert_one(at_end, role="inspector", outcome="failure", now=until)


def test_a_grant_for_another_facility_does_not_cover_this_one(world: World, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    world.grant("insp.elsewhere", now=now, facility=world.other_facility)
    inspector = world.sign_in("insp.elsewhere")
    # The grant does work, for its own facility, so the refusals below are about scope.
    theirs = world.r.search(inspector, Query(facility=world.other_facility), now=now).hits
    assert theirs
    assert {h.facility for h in theirs} == {world.other_facility}

    with audited(world, "insp.elsewhere", "retrieval.search") as searches:
        assert world.r.search(inspector, Query(facility=world.facility), now=now).hits == ()
        assert world.r.search(inspector, Query(encounter_id=world.eid), now=now).hits == ()
    # Searches that find nothing in scope are still audited, with what they returned.
    assert [(e.outcome, e.detail["results"]) for e in searches] == [("success", 0)] * 2

    with (
        audited(world, "insp.elsewhere", "retrieval.view") as views,
        pytest.raises(AccessDeniedError, match="covers"),
    ):
        world.r.view(inspector, world.eid, now=now)
    assert_one(views, role="inspector", outcome="failure", now=now)
    with (
        audited(world, "insp.elsewhere", "retrieval.export") as exports,
        pytest.raises(AccessDeniedError, match="covers"),
    ):
        world.r.export(inspector, out_dir=tmp_path / "out", now=now, encounter_id=world.eid)
    event = assert_one(exports, role="inspector", outcome="failure", now=now)
    assert ("encounter", world.eid) in event.entities
    assert not (tmp_path / "out").exists()


def test_a_revoked_grant_is_refused_and_both_are_audited(world: World) -> None:
    now = datetime.now(UTC)
    grant = world.grant("insp.revoked", now=now, facility=world.facility)
    inspector = world.sign_in("insp.revoked")
    assert [h.encounter_id for h in world.r.view(inspector, world.eid, now=now)] == [world.eid]
    with audited(world, world.officer.username, "retrieval.grant.revoke") as revokes:
        world.r.revoke_grant(world.officer, grant.grant_id, reason="case closed", now=now)
    assert (
        assert_one(revokes, role="records-officer", outcome="success", now=now).detail["grant"]
        == grant.grant_id
    )
    later = now + timedelta(seconds=1)
    with (
        audited(world, "insp.revoked", "retrieval.view") as views,
        pytest.raises(AccessDeniedError, match="no active grant"),
    ):
        world.r.view(inspector, world.eid, now=later)
    assert_one(views, role="inspector", outcome="failure", now=later)


# --- tokens and passwords ------------------------------------------------------------------------


def refused_token(
    w: World, token: str, *, now: datetime, match: str, actor: str = "(token)"
) -> None:
    """``token`` is refused with 401 and audited as one auth.token failure that omits it: a
    forged token under ``(token)``, a genuine but refused one under its account's name."""
    with (
        audited(w, actor, "auth.token") as events,
        pytest.raises(AuthenticationError, match=match),
    ):
        w.r.authenticate(token, now=now)
    event = assert_one(events, role="unknown", outcome="failure", now=now)
    assert (event.reason or "").split(":")[0] in {"AuthenticationError", "TokenRefusedError"}
    if actor != "(token)":
        assert event.detail["token"] == claims_of(token)["jti"]  # whose token, by its id
    assert token not in json.dumps(event.to_json())  # a bearer credential never enters the log


TOKEN_SALT: Final = "emr-archive.retrieval.token.v1"


def claims_of(token: str) -> dict[str, Any]:
    """The payload as anyone holding the token can read it (signed, not encrypted)."""
    _, claims = URLSafeSerializer(b"not the key", salt=TOKEN_SALT).loads_unsafe(token)
    assert isinstance(claims, dict)
    return claims


def escalated(token: str) -> str:
    """The token's payload rewritten to claim records-officer, its signature kept."""
    claims = {**claims_of(token), "role": Role.RECORDS_OFFICER.value}
    signature = token.rsplit(".", 1)[1]
    return f"{base64_encode(json.dumps(claims).encode()).decode()}.{signature}"


def foreign(token: str) -> str:
    """The same payload signed with another secret (a token minted by someone else)."""
    other = URLSafeSerializer(secrets.token_bytes(32), salt=TOKEN_SALT)
    return str(other.dumps(claims_of(token)))


@pytest.mark.parametrize("tamper", [escalated, foreign], ids=["escalated-role", "foreign-key"])
def test_a_tampered_token_is_refused_and_audited(
    world: World, tamper: Callable[[str], str]
) -> None:
    now = datetime.now(UTC)
    session = world.r.login("insp.nogrant", PASSWORD, now=now)
    # The genuine token works, so the refusal is the tampering's doing.
    assert world.r.authenticate(session.token, now=now).role is Role.INSPECTOR
    forged = tamper(session.token)
    assert forged != session.token
    refused_token(world, forged, now=now, match="not valid")


def test_an_expired_token_is_refused_and_audited(world: World) -> None:
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    session = world.r.login("aud.perm", PASSWORD, now=issued)
    last_second = issued + TOKEN_TTL - timedelta(seconds=1)
    assert world.r.authenticate(session.token, now=last_second).username == "aud.perm"
    refused_token(world, session.token, now=issued + TOKEN_TTL, match="expired", actor="aud.perm")


def test_a_token_replayed_after_logout_is_refused_and_audited(world: World) -> None:
    now = datetime.now(UTC)
    session = world.r.login("ro.perm", PASSWORD, now=now)
    principal = world.r.authenticate(session.token, now=now)
    with audited(world, "ro.perm", "auth.logout") as logouts:
        world.r.logout(principal, now=now)
    assert (
        assert_one(logouts, role="records-officer", outcome="success", now=now).detail["token"]
        == principal.token_id
    )
    refused_token(
        world, session.token, now=now + timedelta(seconds=1), match="logged out", actor="ro.perm"
    )


@pytest.mark.parametrize("entry", ["login", "sign_in"])
def test_a_wrong_password_is_audited_without_saying_which_part(world: World, entry: str) -> None:
    now = datetime.now(UTC)
    attempt = getattr(world.r, entry)
    typed = f"not-the-password-{secrets.token_hex(4)}"
    outcomes = []
    for username in ("ro.perm", f"nobody.{secrets.token_hex(3)}"):  # wrong password, no user
        with (
            audited(world, username, "auth.login") as events,
            pytest.raises(AuthenticationError) as refused,
        ):
            attempt(username, typed, now=now)
        # No role is claimed for a caller who did not prove who they are.
        event = assert_one(events, role="unknown", outcome="failure", now=now)
        assert typed not in json.dumps(event.to_json())
        outcomes.append((str(refused.value), event.reason, dict(event.detail)))
    wrong_password, unknown_user = outcomes
    assert wrong_password == unknown_user  # same message, same audit: nothing to tell them apart


def test_the_bootstrap_path_is_closed_once_accounts_exist(world: World) -> None:
    # Without a principal add_user bootstraps the first admin; afterwards it must not be a way
    # for anyone to mint an admin account.
    now = datetime.now(UTC)
    with (
        audited(world, "mallory.admin", "user.add") as events,
        pytest.raises(AuthenticationError, match="sign in as an admin"),
    ):
        world.r.add_user(None, "mallory.admin", Role.ADMIN, PASSWORD, now=now)
    assert world.r.users.get("mallory.admin") is None
    # An anonymous caller claims no role, like a failed login.
    assert [(e.outcome, e.role, e.recorded) for e in events] == [("failure", "unknown", now)]


def test_the_audit_log_verifies_against_its_locked_bucket_copies(world: World) -> None:
    report = world.audit.verify_chain()
    assert report.passed, report.reason
    # The sign-ins and grants of the fixture at least, each flushed before its call returned.
    assert report.events == len(world.audit.show()) >= len(ACTORS) + 1
