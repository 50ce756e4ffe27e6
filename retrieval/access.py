"""Who may do what through retrieval: roles, grants, users, signed expiring tokens.

Roles and actions (:data:`PERMISSIONS`). Retrieval only *reads* records: no role has an action
that changes or deletes one (those go through retention, with its own rules and audit). An
inspector's record actions also need an active :class:`Grant` covering the record.

=================  ==========  ==========  ==========  ==========
action             records-    inspector   auditor     admin
                   officer     (granted)
=================  ==========  ==========  ==========  ==========
record.search      yes         grant       no          no
record.view        yes         grant       no          no
record.export      yes         grant       no          no
grant.manage       yes         no          no          no
audit.read         no          no          yes         yes
user.manage        no          no          no          yes
=================  ==========  ==========  ==========  ==========

Admins manage accounts, not records, and auditors read the log, not records (separation of
duties). Grants, grant revocations and logged-out token ids are events in a hash-chained,
bucket-locked :class:`archive.audit.SegmentChain`, sealed in the bucket under
``access/sealed/v1/events/``: the same mechanism as the retention register, so a grant cannot be
back-dated, widened or silently removed, and the record of who was allowed what lasts as long as
the audit log. Users (password hashes) change, so they live in a small 0600 JSON file; every
change to it is audited.

Passwords: scrypt (RFC 7914, stdlib). Tokens: ``itsdangerous`` signed payloads (HMAC-SHA256 with
a 256-bit secret in ``<access_dir>/token.key``) carrying user, role, token id and expiry; expiry
is checked against the caller's ``now`` (a pinned clock in tests). Logout appends the token id to
the chain; a revoked id is refused until its token would have expired anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from itsdangerous import BadSignature, URLSafeSerializer

from archive.audit import ChainReport, SegmentChain
from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.store import ObjectStore, SealedStore
from retrieval.errors import AccessDeniedError as AccessDeniedError
from retrieval.errors import AuthenticationError as AuthenticationError

ACCESS_PREFIX: Final = "access/sealed/v1/events/"
TOKEN_TTL: Final = timedelta(hours=8)
MAX_GRANT: Final = timedelta(days=366)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


class Role(StrEnum):
    RECORDS_OFFICER = "records-officer"
    INSPECTOR = "inspector"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    SEARCH = "record.search"
    VIEW = "record.view"
    EXPORT = "record.export"
    GRANT_MANAGE = "grant.manage"
    AUDIT_READ = "audit.read"
    USER_MANAGE = "user.manage"


RECORD_ACTIONS: Final = frozenset({Action.SEARCH, Action.VIEW, Action.EXPORT})
PERMISSIONS: Final[Mapping[Role, frozenset[Action]]] = {
    Role.RECORDS_OFFICER: frozenset({*RECORD_ACTIONS, Action.GRANT_MANAGE}),
    Role.INSPECTOR: RECORD_ACTIONS,  # only within an active grant
    Role.AUDITOR: frozenset({Action.AUDIT_READ}),
    Role.ADMIN: frozenset({Action.AUDIT_READ, Action.USER_MANAGE}),
}
GRANT_BOUND: Final = frozenset({Role.INSPECTOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``token_id`` is None for a password sign-in without a token."""

    username: str
    role: Role
    token_id: str | None = None
    expires_at: datetime | None = None


def audit_name(username: str) -> str:
    """The name a failed sign-in is audited under: what was typed only if it could be a username,
    so a patient id or a megabyte of text typed into the field never enters the locked log."""
    return username if _USERNAME.fullmatch(username) else "(not a username)"


def require(principal: Principal, action: Action) -> None:
    """Raise AccessDeniedError unless the role has ``action`` (grants are checked per record)."""
    if action not in PERMISSIONS[principal.role]:
        raise AccessDeniedError(
            f"role {principal.role.value} may not {action.value}; ask a records officer"
        )


# --- grants --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """An inspector may search, view and export records in scope from ``valid_from`` until
    ``valid_until`` (exclusive). Scope: every given element must match; at least one is given."""

    grant_id: str
    inspector: str
    facility: str | None = None
    encounter_ids: frozenset[str] = frozenset()
    patient_pseudonym: str | None = None
    valid_from: datetime
    valid_until: datetime
    issued_by: str
    case_ref: str

    def active(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_until

    def covers(self, *, facility: str, encounter_id: str, patient_pseudonym: str) -> bool:
        return (
            (self.facility is None or self.facility == facility)
            and (not self.encounter_ids or encounter_id in self.encounter_ids)
            and (self.patient_pseudonym is None or self.patient_pseudonym == patient_pseudonym)
        )

    def to_event(self) -> dict[str, Any]:
        return {
            "type": "grant.issued",
            "grant_id": self.grant_id,
            "inspector": self.inspector,
            "facility": self.facility,
            "encounter_ids": sorted(self.encounter_ids),
            "patient_pseudonym": self.patient_pseudonym,
            "valid_from": self.valid_from.astimezone(UTC).isoformat(),
            "valid_until": self.valid_until.astimezone(UTC).isoformat(),
            "issued_by": self.issued_by,
            "case_ref": self.case_ref,
        }

    @classmethod
    def from_event(cls, e: Mapping[str, Any]) -> Grant:
        return cls(
            grant_id=e["grant_id"],
            inspector=e["inspector"],
            facility=e["facility"],
            encounter_ids=frozenset(e["encounter_ids"]),
            patient_pseudonym=e["patient_pseudonym"],
            valid_from=datetime.fromisoformat(e["valid_from"]),
            valid_until=datetime.fromisoformat(e["valid_until"]),
            issued_by=e["issued_by"],
            case_ref=e["case_ref"],
        )


def new_grant(
    *,
    inspector: str,
    issued_by: str,
    case_ref: str,
    valid_from: datetime,
    valid_until: datetime,
    facility: str | None = None,
    encounter_ids: Iterable[str] = (),
    patient_pseudonym: str | None = None,
) -> Grant:
    """A validated grant with a fresh id (refuses blanket, endless or back-to-front grants)."""
    encounters = frozenset(encounter_ids)
    if facility is None and not encounters and patient_pseudonym is None:
        raise ArchiveError("a grant needs a scope: a facility, encounter ids and/or a patient")
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise ArchiveError("grant times must be timezone-aware")
    if not valid_from < valid_until <= valid_from + MAX_GRANT:
        raise ArchiveError(f"a grant must end after it starts and last at most {MAX_GRANT.days} d")
    if not case_ref.strip():
        raise ArchiveError("a grant needs a case reference (inspection decision, court file)")
    return Grant(
        grant_id=f"g-{secrets.token_hex(6)}",
        inspector=inspector,
        facility=facility,
        encounter_ids=encounters,
        patient_pseudonym=patient_pseudonym,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_by=issued_by,
        case_ref=case_ref,
    )


class AccessRegister:
    """Grants and revoked tokens, folded from the hash-chained access log."""

    def __init__(self, chain: SegmentChain, store: ObjectStore) -> None:
        self._chain, self._store = chain, store

    @classmethod
    def for_settings(cls, settings: Settings, store: ObjectStore) -> AccessRegister:
        """Segments sealed under the configured keyring in the bucket, like the audit log's:
        grants name inspectors, encounters and pseudonyms."""
        years = settings.catalog.manifest_retain_years
        chain = SegmentChain(access_dir(settings), prefix=ACCESS_PREFIX, retain_years=years)
        return cls(chain, SealedStore.for_settings(settings, store))

    @classmethod
    def open(cls, directory: Path, store: ObjectStore) -> AccessRegister:
        """Segments go to ``store`` as they are: pass a SealedStore for a bucket."""
        return cls(SegmentChain(directory, prefix=ACCESS_PREFIX), store)

    def verify(self) -> ChainReport:
        """The chain checked locally and against the locked bucket copies."""
        return self._chain.verify(self._store)

    def append(self, event: Mapping[str, Any], *, now: datetime) -> None:
        self._chain.append([event], store=self._store, now=now)

    def grants(self) -> dict[str, Grant]:
        """Issued and not revoked (expired ones included: :meth:`Grant.active` decides)."""
        grants: dict[str, Grant] = {}
        for e in self._chain.records():
            if e["type"] == "grant.issued":
                grants[e["grant_id"]] = Grant.from_event(e)
            elif e["type"] == "grant.revoked":
                grants.pop(e["grant_id"], None)
        return grants

    def active_grants(self, inspector: str, now: datetime) -> list[Grant]:
        return [g for g in self.grants().values() if g.inspector == inspector and g.active(now)]

    def revoked_tokens(self) -> frozenset[str]:
        return frozenset(
            e["token_id"] for e in self._chain.records() if e["type"] == "token.revoked"
        )


def access_dir(settings: Settings) -> Path:
    """Beside the catalog, the audit log and the retention register."""
    return settings.catalog_dir.with_name("access")


# --- users and passwords --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScryptParams:
    n: int = 2**15  # ~50 ms and 32 MiB per check: slows guessing, bounded memory
    r: int = 8
    p: int = 1


def hash_password(password: str, *, params: ScryptParams = ScryptParams()) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex), a fresh 16-byte salt each time."""
    if len(password) < 12:
        raise ArchiveError("a password needs at least 12 characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${salt.hex()}${digest.hex()}"


def check_password(password: str, encoded: str) -> bool:
    try:
        kind, n, r, p, salt, digest = encoded.split("$")
        params = ScryptParams(int(n), int(r), int(p))
        expected = bytes.fromhex(digest)
        got = _scrypt(password, bytes.fromhex(salt), params)
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(got, expected)


@functools.cache
def _decoy_hash(params: ScryptParams) -> str:
    """What an unknown username's password is checked against: made once per process, so the
    check costs one scrypt like a real account's (hashing per call would cost two)."""
    return hash_password(secrets.token_urlsafe(16), params=params)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=params.n, r=params.r, p=params.p, maxmem=2**26, dklen=32
    )


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    password_hash: str
    disabled: bool = False


class UserStore:
    """Users in ``<access_dir>/users.json`` (0600), changed under a lock, written atomically."""

    def __init__(self, path: Path, *, params: ScryptParams = ScryptParams()) -> None:
        self.path, self.params = path, params

    def users(self) -> dict[str, User]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        return {
            name: User(name, Role(u["role"]), u["password_hash"], u.get("disabled", False))
            for name, u in raw["users"].items()
        }

    def get(self, username: str) -> User | None:
        return self.users().get(username)

    def add(self, username: str, role: Role, password: str) -> User:
        if not _USERNAME.fullmatch(username):
            raise ArchiveError("a username is 2-64 of a-z, 0-9, '.', '_', '-', starting alnum")
        user = User(username, role, hash_password(password, params=self.params))
        with self._locked() as users:
            if username in users:
                raise ArchiveError(f"user {username} exists: disable it or pick another name")
            users[username] = user
        return user

    def set_disabled(self, username: str, disabled: bool) -> None:
        with self._locked() as users:
            user = users.get(username)
            if user is None:
                raise ArchiveError(f"no user {username}")
            users[username] = User(user.username, user.role, user.password_hash, disabled)

    def authenticate(self, username: str, password: str) -> User:
        """The user, or AuthenticationError that does not say which part was wrong."""
        user = self.get(username)
        # One scrypt for an unknown user too, so timing does not tell which usernames exist.
        encoded = user.password_hash if user else _decoy_hash(self.params)
        if not check_password(password, encoded) or user is None or user.disabled:
            raise AuthenticationError("unknown user or wrong password")
        return user

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, User]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(".users.lock"), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            users = self.users()
            yield users
            doc = {
                "format": "emr-archive-users-1",
                "users": {
                    u.username: {
                        "role": u.role.value,
                        "password_hash": u.password_hash,
                        "disabled": u.disabled,
                    }
                    for u in users.values()
                },
            }
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)


# --- tokens --------------------------------------------------------------------------------------


class TokenRefusedError(AuthenticationError):
    """A token whose signature holds but which is refused (expired, logged out, account changed):
    it names its account and token id, so the audit log can say whose token was replayed."""

    def __init__(self, message: str, *, subject: str, token_id: str) -> None:
        super().__init__(message)
        self.subject, self.token_id = subject, token_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_token_refused, (str(self), self.subject, self.token_id))


def _token_refused(message: str, subject: str, token_id: str) -> TokenRefusedError:
    return TokenRefusedError(message, subject=subject, token_id=token_id)


class TokenService:
    """Signed, expiring bearer tokens (for the portal's cookie or an ``Authorization`` header, and
    the CLI's token file). A token is valid while its signature holds, ``now`` is before its
    expiry, its id is not revoked, and the user still exists, is enabled and has the same role."""

    def __init__(self, secret: bytes, *, ttl: timedelta = TOKEN_TTL) -> None:
        if len(secret) < 32:
            raise ArchiveError("the token secret must be at least 32 bytes")
        self._serializer = URLSafeSerializer(secret, salt="emr-archive.retrieval.token.v1")
        self.ttl = ttl

    @classmethod
    def for_directory(cls, directory: Path, *, ttl: timedelta = TOKEN_TTL) -> TokenService:
        """The secret in ``<directory>/token.key`` (created 0600 on first use)."""
        path = directory / "token.key"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
        return cls(path.read_bytes(), ttl=ttl)

    def issue(self, user: User, *, now: datetime) -> tuple[str, Principal]:
        expires = now + self.ttl
        principal = Principal(user.username, user.role, secrets.token_hex(16), expires)
        payload = {
            "sub": user.username,
            "role": user.role.value,
            "jti": principal.token_id,
            "exp": int(expires.timestamp()),
        }
        return str(self._serializer.dumps(payload)), principal

    def verify(
        self, token: str, *, now: datetime, users: UserStore, revoked: frozenset[str]
    ) -> Principal:
        try:
            payload = self._serializer.loads(token)
        except BadSignature as e:
            raise AuthenticationError("the token is not valid (altered or foreign): sign in") from e
        expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
        who = {"subject": str(payload["sub"]), "token_id": str(payload["jti"])}
        if now >= expires:
            raise TokenRefusedError("the token expired: sign in again", **who)
        if payload["jti"] in revoked:
            raise TokenRefusedError("the token was logged out: sign in again", **who)
        user = users.get(payload["sub"])
        if user is None or user.disabled or user.role.value != payload["role"]:
            raise TokenRefusedError(
                "the account changed since the token was issued: sign in", **who
            )
        return Principal(user.username, user.role, payload["jti"], expires)
