"""Access control: permission table, grants, passwords, tokens (pinned clock, real crypto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.core.errors import ArchiveError
from retention import APPROVING_ROLES
from retrieval.access import (
    DISPOSITION_APPROVERS,
    PERMISSIONS,
    AccessDeniedError,
    AccessRegister,
    Action,
    AuthenticationError,
    Grant,
    Principal,
    Role,
    ScryptParams,
    TokenService,
    UserStore,
    check_password,
    hash_password,
    new_grant,
    require,
)
from tests.support.chains import CHAIN_KEY
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FAST = ScryptParams(n=2**10)  # the KDF is the same; cheaper parameters keep unit tests fast
PASSWORD = "correct horse battery"

# Who may do what: the table the README documents. Nobody has an action that changes a record.
EXPECTED = {
    Role.RECORDS_OFFICER: {"record.search", "record.view", "record.export", "grant.manage"},
    Role.INSPECTOR: {"record.search", "record.view", "record.export"},
    Role.AUDITOR: {"audit.read"},
    Role.ADMIN: {"audit.read", "user.manage"},
    Role.FACILITY_HEAD: {"audit.read"},  # approves destructions (retention), reads no record
    Role.HEAD_DELEGATE: {"audit.read"},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_permission_table_each_role_and_action(role: Role, action: Action) -> None:
    principal = Principal("someone", role)
    if action.value in EXPECTED[role]:
        require(principal, action)
    else:
        with pytest.raises(AccessDeniedError, match=role.value):
            require(principal, action)


def test_the_disposition_approvers_are_the_roles_retention_accepts() -> None:
    # Retention imports only archive, so it knows the approving roles by name: the two lists
    # must be the same, or a facility head's account could never approve (or another could).
    assert {r.value for r in DISPOSITION_APPROVERS} == APPROVING_ROLES
    assert Role.RECORDS_OFFICER not in DISPOSITION_APPROVERS


def test_no_action_changes_or_deletes_a_record() -> None:
    every = {a.value for actions in PERMISSIONS.values() for a in actions}
    assert not {a for a in every if any(w in a for w in ("delete", "modify", "write", "update"))}


def _grant(**overrides: Any) -> Grant:
    scope: dict[str, Any] = dict(
        inspector="insp.an",
        issued_by="ro.binh",
        case_ref="QD-12/2026",
        facility="79001",
        valid_from=NOW,
        valid_until=NOW + timedelta(days=7),
    )
    scope.update(overrides)
    return new_grant(**scope)


def test_grant_covers_its_facility_only_and_only_within_its_window() -> None:
    grant = _grant()
    assert grant.covers(facility="79001", encounter_id="E1", patient_pseudonym="p1_x")
    assert not grant.covers(facility="79002", encounter_id="E1", patient_pseudonym="p1_x")
    assert grant.active(NOW + timedelta(days=6, hours=23))
    assert not grant.active(NOW + timedelta(days=7))  # expired
    assert not grant.active(NOW - timedelta(seconds=1))


def test_grant_scope_elements_all_apply() -> None:
    grant = _grant(encounter_ids=["E1"], patient_pseudonym="p1_a")
    assert grant.covers(facility="79001", encounter_id="E1", patient_pseudonym="p1_a")
    assert not grant.covers(facility="79001", encounter_id="E2", patient_pseudonym="p1_a")
    assert not grant.covers(facility="79001", encounter_id="E1", patient_pseudonym="p1_b")


@pytest.mark.parametrize(
    "overrides",
    [
        {"facility": None},  # no scope at all
        {"valid_until": NOW},  # ends when it starts
        {"valid_until": NOW + timedelta(days=400)},  # longer than a year
        {"case_ref": " "},
    ],
)
def test_unsafe_grants_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ArchiveError):
        _grant(**overrides)


def test_grants_are_chained_revocable_and_expire(tmp_path: Path) -> None:
    register = AccessRegister.open(tmp_path / "access", MemoryStore(), key=CHAIN_KEY)
    first, second = _grant(), _grant(facility="79002", valid_until=NOW + timedelta(days=1))
    for g in (first, second):
        register.append(g.to_event(), now=NOW)
    assert len(register.active_grants("insp.an", NOW)) == 2
    assert len(register.active_grants("insp.an", NOW + timedelta(days=2))) == 1  # one expired
    register.append({"type": "grant.revoked", "grant_id": first.grant_id}, now=NOW)
    assert register.active_grants("insp.an", NOW) == [second]
    assert register.active_grants("someone.else", NOW) == []


def test_password_hashing_is_salted_scrypt_and_checks() -> None:
    one, two = hash_password(PASSWORD, params=FAST), hash_password(PASSWORD, params=FAST)
    assert one.startswith("scrypt$1024$8$1$")
    assert one != two
    assert check_password(PASSWORD, one)
    assert check_password(PASSWORD, two)
    assert not check_password(PASSWORD + "!", one)
    assert not check_password(PASSWORD, "not-a-hash")
    assert PASSWORD not in one
    with pytest.raises(ArchiveError, match="12 characters"):
        hash_password("short", params=FAST)


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    store = UserStore(tmp_path / "users.json", params=FAST)
    store.add("insp.an", Role.INSPECTOR, PASSWORD)
    return store


def test_users_file_is_private_and_authenticates(users: UserStore) -> None:
    assert users.path.stat().st_mode & 0o777 == 0o600
    assert users.authenticate("insp.an", PASSWORD).role is Role.INSPECTOR
    for name, password in (("insp.an", "wrong password!"), ("nobody", PASSWORD)):
        with pytest.raises(AuthenticationError, match="unknown user or wrong password"):
            users.authenticate(name, password)
    users.set_disabled("insp.an", True)
    with pytest.raises(AuthenticationError):
        users.authenticate("insp.an", PASSWORD)


def test_token_round_trip(users: UserStore) -> None:
    tokens = TokenService(b"k" * 32)
    token, issued = tokens.issue(users.authenticate("insp.an", PASSWORD), now=NOW)
    found = tokens.verify(token, now=NOW + timedelta(hours=1), users=users, revoked=frozenset())
    assert found == issued
    assert found.role is Role.INSPECTOR


def test_tampered_token_is_refused(users: UserStore) -> None:
    tokens = TokenService(b"k" * 32)
    token, _ = tokens.issue(users.authenticate("insp.an", PASSWORD), now=NOW)
    payload, _, signature = token.rpartition(".")
    forged = payload.replace(payload[5], "A" if payload[5] != "A" else "B") + "." + signature
    for bad in (forged, token[:-2] + "xx", "garbage"):
        with pytest.raises(AuthenticationError, match="not valid"):
            tokens.verify(bad, now=NOW, users=users, revoked=frozenset())
    other = TokenService(b"o" * 32)  # signed with another secret
    with pytest.raises(AuthenticationError, match="not valid"):
        other.verify(token, now=NOW, users=users, revoked=frozenset())


def test_expired_token_is_refused(users: UserStore) -> None:
    tokens = TokenService(b"k" * 32, ttl=timedelta(minutes=30))
    token, _ = tokens.issue(users.authenticate("insp.an", PASSWORD), now=NOW)
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(token, now=NOW + timedelta(minutes=30), users=users, revoked=frozenset())


def test_logged_out_token_replayed_is_refused(users: UserStore, tmp_path: Path) -> None:
    tokens, register = (
        TokenService(b"k" * 32),
        AccessRegister.open(tmp_path / "a", MemoryStore(), key=CHAIN_KEY),
    )
    token, principal = tokens.issue(users.authenticate("insp.an", PASSWORD), now=NOW)
    register.append({"type": "token.revoked", "token_id": principal.token_id}, now=NOW)
    with pytest.raises(AuthenticationError, match="logged out"):
        tokens.verify(token, now=NOW, users=users, revoked=register.revoked_tokens())


def test_token_of_a_changed_account_is_refused(users: UserStore) -> None:
    tokens = TokenService(b"k" * 32)
    token, _ = tokens.issue(users.authenticate("insp.an", PASSWORD), now=NOW)
    users.set_disabled("insp.an", True)
    with pytest.raises(AuthenticationError, match="account changed"):
        tokens.verify(token, now=NOW, users=users, revoked=frozenset())


def test_token_secret_file_is_created_private_once(tmp_path: Path) -> None:
    TokenService.for_directory(tmp_path / "access")
    key = tmp_path / "access" / "token.key"
    first = key.read_bytes()
    TokenService.for_directory(tmp_path / "access")
    assert key.read_bytes() == first
    assert len(first) == 32
    assert key.stat().st_mode & 0o777 == 0o600
