"""Sessions as signed, expiring bearer tokens: the portal's cookie, an ``Authorization`` header,
the CLI's token file.

``itsdangerous`` signed payloads (HMAC-SHA256 with a 256-bit secret in
``<access_dir>/token.key``) carry user, role, token id and expiry; expiry is checked against the
caller's ``now`` (a pinned clock in tests). Nothing is stored per token: logout appends the token
id to the access register, and a revoked id is refused until its token would have expired anyway.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from itsdangerous import BadSignature, URLSafeSerializer

from archive.core.atomic import write_atomic
from archive.core.errors import ArchiveError
from retrieval.access.accounts import User, UserStore
from retrieval.access.roles import Principal
from retrieval.errors import AuthenticationError, TokenRefusedError

TOKEN_TTL: Final = timedelta(hours=8)


class TokenService:
    """Signed, expiring bearer tokens. A token is valid while its signature holds, ``now`` is
    before its expiry, its id is not revoked, and the user still exists, is enabled and has the
    same role."""

    def __init__(self, secret: bytes, *, ttl: timedelta = TOKEN_TTL) -> None:
        if len(secret) < 32:
            raise ArchiveError("the token secret must be at least 32 bytes")
        self._serializer = URLSafeSerializer(secret, salt="emr-archive.retrieval.token.v1")
        self._secret, self.ttl = secret, ttl

    @classmethod
    def for_directory(cls, directory: Path, *, ttl: timedelta = TOKEN_TTL) -> TokenService:
        """The secret in ``<directory>/token.key`` (created 0600 on first use; the first of two
        processes starting together wins and both use its secret)."""
        path = directory / "token.key"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            write_atomic(path, secrets.token_bytes(32), exclusive=True)
        return cls(path.read_bytes(), ttl=ttl)

    def account_pseudonym(self, name: str) -> str:
        """How a refused sign-in names the account typed: ``a1_`` + a keyed, domain-separated
        HMAC, so repeated attempts on one name correlate in the log while what was typed (a
        patient's id pasted into the wrong field) is never stored. Whoever holds the token key
        can tell which account a pseudonym is by hashing the account list."""
        digest = hmac.new(
            self._secret, b"emr-archive/refused-account/v1\x00" + name.encode(), "sha256"
        )
        return "a1_" + digest.hexdigest()[:32]

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
