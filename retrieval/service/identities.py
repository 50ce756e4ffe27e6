"""Identities: signing in and out, checking a session, and managing accounts.

A password check gives a :class:`Session` (a token for the portal's cookie or the CLI's token
file); a token gives back its :class:`Principal`. Every refusal is audited before it is raised,
under the name typed if it could be a username (:func:`retrieval.access.audit_name`), and a
refused token under the account it names, so the log shows whose session was replayed.

A caller that names the request's ``source`` (the portal: the client's address) while the service
has a :class:`~retrieval.service.refusals.RefusalTally` gets refusals counted there instead: one
event per source, account pseudonym and window, never what was typed nor the token.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from retrieval.access import (
    AccessDeniedError,
    Action,
    AuthenticationError,
    Principal,
    Role,
    TokenRefusedError,
    audit_name,
    require,
)
from retrieval.service.parts import ServiceParts


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    principal: Principal


class Identities(ServiceParts):
    def login(
        self, username: str, password: str, *, now: datetime, source: str | None = None
    ) -> Session:
        try:
            user = self.users.authenticate(username, password)
        except AuthenticationError as e:
            self._refused_login(username, now, e, source)
            raise
        token, principal = self.tokens.issue(user, now=now)
        self._record(principal, "auth.login", now, detail={"token": principal.token_id or ""})
        return Session(token, principal)

    def sign_in(self, username: str, password: str, *, now: datetime) -> Principal:
        """A password check without a token (one CLI command); audited like a login."""
        try:
            user = self.users.authenticate(username, password)
        except AuthenticationError as e:
            self._refused_login(username, now, e, None)
            raise
        principal = Principal(user.username, user.role)
        self._record(principal, "auth.login", now, detail={"token": "none"})
        return principal

    def authenticate(self, token: str, *, now: datetime, source: str | None = None) -> Principal:
        try:
            return self.tokens.verify(
                token, now=now, users=self.users, revoked=self.access.revoked_tokens()
            )
        except TokenRefusedError as e:  # a genuine token, refused: say whose
            if self.tallied("auth.token", source, e.subject, e, now):
                raise
            self._record(
                Principal(e.subject, Role.INSPECTOR),
                "auth.token",
                now,
                error=e,
                role="unknown",
                detail={"token": e.token_id},
            )
            raise
        except AuthenticationError as e:
            if self.tallied("auth.token", source, None, e, now):
                raise
            self._record(
                Principal("(token)", Role.INSPECTOR), "auth.token", now, error=e, role="unknown"
            )
            raise

    def logout(self, principal: Principal, *, now: datetime) -> None:
        if principal.token_id is None:
            return
        until = (principal.expires_at or now).astimezone(UTC).isoformat()
        self.access.append(
            {
                "type": "token.revoked",
                "token_id": principal.token_id,
                "by": principal.username,
                "until": until,
            },
            now=now,
        )
        self._record(principal, "auth.logout", now, detail={"token": principal.token_id})

    def add_user(
        self,
        principal: Principal | None,
        username: str,
        role: Role,
        password: str,
        *,
        now: datetime,
    ) -> None:
        """An admin adds an account; with no account at all, the first admin bootstraps itself
        (``principal`` None), as `make demo` and a fresh installation do."""
        bootstrap = principal is None
        if bootstrap and (self.users.users() or role is not Role.ADMIN):
            refused = AuthenticationError("sign in as an admin to add users (--as ADMIN)")
            asked = {"user": username, "user_role": role.value}
            self._record(
                Principal(username, Role.ADMIN),
                "user.add",
                now,
                error=refused,
                role="unknown",
                detail=asked,
            )
            raise refused
        actor = principal or Principal(username, Role.ADMIN)
        with self._audited(actor, "user.add", now, []) as ev:
            if principal is not None:
                require(principal, Action.USER_MANAGE)
            self.users.add(username, role, password)
            ev.update(user=username, user_role=role.value, bootstrap=int(bootstrap))

    def disable_user(self, principal: Principal, username: str, *, now: datetime) -> None:
        """Disabling refuses the account's passwords and every token it holds."""
        with self._audited(principal, "user.disable", now, []) as ev:
            require(principal, Action.USER_MANAGE)
            self.users.set_disabled(username, True)
            ev["user"] = username

    def retention_officer(self, principal: Principal, action: str, *, now: datetime) -> str:
        """The name a retention change (hold, extension, proposal) is recorded under: only a
        records officer may make one; a refusal is audited under ``action``."""
        return self.retention_actor(principal, action, roles={Role.RECORDS_OFFICER}, now=now)

    def retention_actor(
        self, principal: Principal, action: str, *, roles: Collection[Role], now: datetime
    ) -> str:
        """The signed-in account's name if its role is one of ``roles`` (empty: any role, the
        retention rule itself then decides on the role passed down, as disposition approval
        does); a refusal is audited under ``action``."""
        with self._audited(principal, action, now, []) as ev:
            if roles and principal.role not in roles:
                wanted = " or ".join(sorted(r.value for r in roles))
                raise AccessDeniedError(
                    f"this retention step is taken by a {wanted}; "
                    f"{principal.username} is {principal.role.value}"
                )
            ev["authorised"] = 1
        return principal.username

    def tallied(
        self, action: str, source: str | None, account: str | None, error: Exception, now: datetime
    ) -> bool:
        """Count a refusal in the tally if there is one and the caller named its source (also
        for the portal's own refusals, such as a throttled attempt); False: record it now."""
        if self.refusals is None or source is None:
            return False
        actor = "(token)" if account is None else self.tokens.account_pseudonym(account)
        reason = f"{type(error).__name__}: {error}"[:300]
        self.refusals.add(action, source=source, actor=actor, reason=reason, now=now)
        return True

    def _refused_login(
        self, username: str, now: datetime, error: AuthenticationError, source: str | None
    ) -> None:
        if self.tallied("auth.login", source, username, error, now):
            return
        who = Principal(audit_name(username), Role.INSPECTOR)
        self._record(who, "auth.login", now, error=error, role="unknown")
