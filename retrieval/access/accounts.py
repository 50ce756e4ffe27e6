"""Accounts: usernames, roles and password hashes, and the check of a password against them.

Unlike grants, accounts change (a password reset, an account disabled), so they live in a small
0600 JSON file, ``<access_dir>/users.json``, not in the locked chain; every change to it goes
through :class:`retrieval.Retrieval`, which audits it.

Passwords: scrypt (RFC 7914, stdlib), a fresh salt per hash. An unknown username costs the same
scrypt as a known one, so the time of a refusal does not tell which usernames exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archive.core.atomic import write_atomic
from archive.core.errors import ArchiveError
from retrieval.access.roles import Role
from retrieval.errors import AuthenticationError

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


def audit_name(username: str) -> str:
    """The name a failed sign-in is audited under: what was typed only if it could be a username,
    so a patient id or a megabyte of text typed into the field never enters the locked log."""
    return username if _USERNAME.fullmatch(username) else "(not a username)"


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
        """The accounts to change in the ``with`` block; written back only if it completes."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(".users.lock"), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            users = self.users()
            yield users
            write_atomic(self.path, json.dumps(_document(users), indent=1, sort_keys=True))


def _document(users: dict[str, User]) -> dict[str, object]:
    return {
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
