"""Retrieval: the one API the CLI and the portal call. Every call is authorised and audited.

``Retrieval.open(settings)`` wires the parts; then ``login``/``authenticate``/``logout`` for
identities, ``search``, ``view`` and ``export`` for records, ``issue_grant``/``revoke_grant`` for
records officers, ``audit_events`` for auditors. Each records-facing call appends one audit event
(``retrieval.search``, ``retrieval.view``, ``retrieval.export``, ``retrieval.grant.*``,
``auth.*``) with who, role, grant(s), what and outcome, and flushes it before returning: a refusal
is audited and then raised (:class:`AuthenticationError` = 401, :class:`AccessDeniedError` = 403).

Nothing here writes a record or a lock: on record keys only GET and HEAD are issued. The store
identity must still be able to create objects, because the audit log and the access register are
appended as create-once, locked segments under their own prefixes (``audit/``, ``access/``).

One ``Retrieval`` per process (the portal: per worker); the index serialises its own use across
threads. ``bagit`` changes the working directory while it builds a bag, so a portal must export
in a worker process (or one export at a time), never on a thread beside others.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from archive.audit import AuditEvent, AuditLog
from archive.catalog import HEAD_FILE, Catalog, CatalogRow
from archive.core.errors import ArchiveError
from archive.seal import LocalKeyring
from archive.sign import SignerConfig, load_trust_roots
from archive.store import ObjectStore
from retention.register import Register
from retrieval.access import (
    GRANT_BOUND,
    AccessDeniedError,
    AccessRegister,
    Action,
    AuthenticationError,
    Grant,
    Principal,
    Role,
    TokenRefusedError,
    TokenService,
    UserStore,
    access_dir,
    audit_name,
    new_grant,
    require,
)
from retrieval.dossier import ExportResult, export_dossier, newest_per_encounter
from retrieval.index import LastVerification, SearchIndex
from verification.config import HoldSet, output_directory
from verification.evidence import Environment
from verification.log import log_dir
from verification.settings import VerifySettings as Settings

MAX_RESULTS = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Exactly one of: encounter id, patient (id, pseudonymised at once), facility + discharge
    date range, retention class (+ optional date range)."""

    encounter_id: str | None = None
    patient_pseudonym: str | None = None
    facility: str | None = None
    retention_class: str | None = None
    discharged_from: date | None = None
    discharged_to: date | None = None  # inclusive

    def __post_init__(self) -> None:
        kinds = [self.encounter_id, self.patient_pseudonym, self.facility or self.retention_class]
        if sum(k is not None for k in kinds) > 1:
            raise ArchiveError(
                "search by one of: encounter, patient, facility and/or class (with dates)"
            )

    def describe(self) -> dict[str, str]:
        d = {
            k: str(v)
            for k, v in (
                ("encounter", self.encounter_id),
                ("facility", self.facility),
                ("class", self.retention_class),
                ("from", self.discharged_from),
                ("to", self.discharged_to),
            )
            if v is not None
        }
        if self.patient_pseudonym:
            d["patient"] = "pseudonym"
        return d


@dataclass(frozen=True, slots=True)
class Hit:
    """One record as a search shows it. ``patient_pseudonym`` only for records officers."""

    encounter_id: str
    facility: str
    admitted_at: datetime
    discharged_at: datetime
    retention_class: str
    retain_until: datetime
    on_hold: bool
    versions: int
    verification: LastVerification | None
    patient_pseudonym: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[Hit, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    principal: Principal


class Retrieval:
    def __init__(
        self,
        *,
        settings: Settings,
        store: ObjectStore,
        catalog: Catalog,
        index: SearchIndex,
        register: Register,
        access: AccessRegister,
        users: UserStore,
        tokens: TokenService,
        audit: AuditLog,
        keyring: LocalKeyring,
        env_factory: Callable[[HoldSet], Environment],
    ) -> None:
        self.settings, self.store, self.catalog, self.index = settings, store, catalog, index
        self.register, self.access, self.users, self.tokens = register, access, users, tokens
        self.audit, self.keyring, self._env_factory = audit, keyring, env_factory
        self._head: bytes | None = None

    @classmethod
    def open(cls, settings: Settings, *, store: ObjectStore | None = None) -> Retrieval:
        from archive import wiring

        store = store or wiring.open_store(settings)
        keyring = wiring.open_keyring(settings)
        roots = tuple(load_trust_roots(SignerConfig.from_settings(settings).trust_roots))

        def env(holds: HoldSet) -> Environment:
            return Environment(
                store=store,
                keys=keyring,
                seal=settings.seal,
                trust_roots=roots,
                holds=holds,
                settings=settings.verification,
            )

        return cls(
            settings=settings,
            store=store,
            catalog=wiring.open_catalog(settings, create=True),
            index=SearchIndex.open(index_dir(settings)),
            register=Register.for_settings(settings, store),
            access=AccessRegister.for_settings(settings, store),
            users=UserStore(access_dir(settings) / "users.json"),
            tokens=TokenService.for_directory(access_dir(settings)),
            audit=AuditLog.for_settings(settings, store),
            keyring=keyring,
            env_factory=env,
        )

    # --- identities ------------------------------------------------------------------------------

    def login(self, username: str, password: str, *, now: datetime) -> Session:
        try:
            user = self.users.authenticate(username, password)
        except AuthenticationError as e:
            self._record(
                Principal(audit_name(username), Role.INSPECTOR),
                "auth.login",
                now,
                error=e,
                role="unknown",
            )
            raise
        token, principal = self.tokens.issue(user, now=now)
        self._record(principal, "auth.login", now, detail={"token": principal.token_id or ""})
        return Session(token, principal)

    def sign_in(self, username: str, password: str, *, now: datetime) -> Principal:
        """A password check without a token (one CLI command); audited like a login."""
        try:
            user = self.users.authenticate(username, password)
        except AuthenticationError as e:
            who = Principal(audit_name(username), Role.INSPECTOR)
            self._record(who, "auth.login", now, error=e, role="unknown")
            raise
        principal = Principal(user.username, user.role)
        self._record(principal, "auth.login", now, detail={"token": "none"})
        return principal

    def authenticate(self, token: str, *, now: datetime) -> Principal:
        try:
            return self.tokens.verify(
                token, now=now, users=self.users, revoked=self.access.revoked_tokens()
            )
        except TokenRefusedError as e:  # a genuine token, refused: say whose
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
        """The name a retention change (hold, extension, disposition) is recorded under: only a
        records officer may make one; a refusal is audited under ``action``."""
        with self._audited(principal, action, now, []) as ev:
            if principal.role is not Role.RECORDS_OFFICER:
                role = principal.role.value
                raise AccessDeniedError(
                    f"retention changes are made by a records officer; "
                    f"{principal.username} is {role}"
                )
            ev["authorised"] = 1
        return principal.username

    # --- records ---------------------------------------------------------------------------------

    def pseudonym(self, patient_id: str) -> str:
        """A patient id becomes its pseudonym here and goes no further."""
        return self.keyring.pseudonym(patient_id)

    def search(self, principal: Principal, query: Query, *, now: datetime) -> SearchResult:
        entities = _query_entities(query)
        with self._audited(principal, "retrieval.search", now, entities, query.describe()) as ev:
            grants = self._authorise(principal, Action.SEARCH, now)
            rows = self._rows(query)
            allowed = [r for r in rows if _covered(principal, grants, r)]
            hits = self._hits(principal, allowed)
            ev["grants"] = ",".join(g.grant_id for g in grants)
            ev["results"] = len(hits)
            return SearchResult(tuple(hits[:MAX_RESULTS]), len(hits) > MAX_RESULTS)

    def view(self, principal: Principal, encounter_id: str, *, now: datetime) -> list[Hit]:
        """The dossier page: every version of one encounter with its state (no document bytes)."""
        with self._audited(principal, "retrieval.view", now, [("encounter", encounter_id)]) as ev:
            grants = self._authorise(principal, Action.VIEW, now)
            rows = self._rows(Query(encounter_id=encounter_id))
            self._require_covered(principal, grants, rows)
            ev["grants"] = ",".join(g.grant_id for g in grants)
            return self._hits(principal, rows)

    def export(
        self,
        principal: Principal,
        *,
        out_dir: Path,
        now: datetime,
        encounter_id: str | None = None,
        patient_pseudonym: str | None = None,
    ) -> ExportResult:
        if (encounter_id is None) == (patient_pseudonym is None):
            raise ArchiveError("export one encounter or one patient")
        query = Query(encounter_id=encounter_id, patient_pseudonym=patient_pseudonym)
        with self._audited(principal, "retrieval.export", now, _query_entities(query)) as ev:
            grants = self._authorise(principal, Action.EXPORT, now)
            rows = self._rows(query)
            if patient_pseudonym is not None and principal.role in GRANT_BOUND:
                # A patient's dossier holds what the grants cover, as the search showed it:
                # refusing because of records elsewhere would tell that they exist.
                rows = [r for r in rows if _covered(principal, grants, r)]
            self._require_covered(principal, grants, rows)
            chosen = newest_per_encounter([CatalogRow.from_dict(self._full(r)) for r in rows])
            label = _label(encounter_id, patient_pseudonym, now)
            context = {
                "exported_by": principal.username,
                "role": principal.role.value,
                "grants": ",".join(g.grant_id for g in grants),
            }
            env = self._env_factory(HoldSet.of(self.register.held_encounters()))
            result = export_dossier(
                chosen, env=env, out_dir=out_dir, label=label, now=now, context=context
            )
            ev.update(
                grants=context["grants"],
                documents=len(result.documents),
                zip_sha256=result.sha256,
                failed=sum(d.status != "passed" for d in result.documents),
            )
            documents = [("encounter", d.encounter_id) for d in result.documents]
            ev["entities"] = [
                *_query_entities(query),
                *(e for e in documents if e not in _query_entities(query)),
            ]
            return result

    # --- grants ----------------------------------------------------------------------------------

    def issue_grant(
        self,
        principal: Principal,
        *,
        now: datetime,
        inspector: str,
        case_ref: str,
        valid_from: datetime,
        valid_until: datetime,
        facility: str | None = None,
        encounter_ids: Sequence[str] = (),
        patient_pseudonym: str | None = None,
    ) -> Grant:
        """A records officer lets ``inspector`` find and export records in scope until
        ``valid_until``; every given scope element must match a record."""
        with self._audited(principal, "retrieval.grant.issue", now, []) as ev:
            require(principal, Action.GRANT_MANAGE)
            account = self.users.get(inspector)
            if account is None or account.role is not Role.INSPECTOR:
                raise ArchiveError(f"{inspector} is not an inspector account")
            grant = new_grant(
                issued_by=principal.username,
                inspector=inspector,
                case_ref=case_ref,
                valid_from=valid_from,
                valid_until=valid_until,
                facility=facility,
                encounter_ids=encounter_ids,
                patient_pseudonym=patient_pseudonym,
            )
            self.access.append(grant.to_event(), now=now)
            ev.update(
                grant=grant.grant_id, inspector=grant.inspector, until=grant.valid_until.isoformat()
            )
            return grant

    def revoke_grant(
        self, principal: Principal, grant_id: str, *, reason: str, now: datetime
    ) -> None:
        with self._audited(principal, "retrieval.grant.revoke", now, []) as ev:
            require(principal, Action.GRANT_MANAGE)
            if grant_id not in self.access.grants():
                raise ArchiveError(f"no active grant {grant_id}")
            self.access.append(
                {
                    "type": "grant.revoked",
                    "grant_id": grant_id,
                    "by": principal.username,
                    "reason": reason,
                },
                now=now,
            )
            ev["grant"] = grant_id

    def grants(self, principal: Principal, *, now: datetime) -> list[Grant]:
        """Records officers see all grants; an inspector sees their own active ones."""
        with self._audited(principal, "retrieval.grant.list", now, []) as ev:
            if principal.role is Role.INSPECTOR:
                grants = self.access.active_grants(principal.username, now)
            else:
                require(principal, Action.GRANT_MANAGE)
                grants = list(self.access.grants().values())
            ev["results"] = len(grants)
            return grants

    def inspectors(self, principal: Principal) -> list[str]:
        """The enabled inspector accounts a records officer may grant to."""
        require(principal, Action.GRANT_MANAGE)
        return sorted(
            u.username
            for u in self.users.users().values()
            if u.role is Role.INSPECTOR and not u.disabled
        )

    def audit_events(
        self,
        principal: Principal,
        *,
        now: datetime,
        actor: str | None = None,
        action: str | None = None,
    ) -> list[AuditEvent]:
        with self._audited(principal, "retrieval.audit.read", now, []) as ev:
            require(principal, Action.AUDIT_READ)
            events = self.audit.show(actor=actor, action=action)
            ev["results"] = len(events)
            return events

    # --- internals -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to the catalog and the verification log (cheap when current)."""
        head = self.catalog.directory / HEAD_FILE
        current = head.read_bytes() if head.exists() else b""
        if current != self._head:  # reopening verifies the whole chain: only when it grew
            self.catalog = Catalog.open(self.catalog.directory)
            self.index.sync(self.catalog)
            self._head = current
        out = output_directory(self.settings, self.settings.verification)
        self.index.sync_verification(log_dir(out))

    def _authorise(self, principal: Principal, action: Action, now: datetime) -> list[Grant]:
        require(principal, action)
        grants: list[Grant] = []
        if principal.role in GRANT_BOUND:
            grants = self.access.active_grants(principal.username, now)
            if not grants:
                raise AccessDeniedError(
                    f"inspector {principal.username} holds no active grant: ask a records officer"
                )
        self.refresh()
        return grants

    def _rows(self, q: Query) -> list[dict[str, Any]]:
        if q.encounter_id:
            rows = self.index.by_encounter(q.encounter_id)
        elif q.patient_pseudonym:
            rows = self.index.by_patient(q.patient_pseudonym)
        elif q.facility or q.retention_class:
            start, end = self._day_range(q.discharged_from, q.discharged_to)
            if q.facility:
                rows = self.index.by_facility(q.facility, start=start, end=end, limit=5000)
                if q.retention_class:
                    rows = [r for r in rows if r["retention_class"] == q.retention_class]
            else:
                assert q.retention_class is not None
                rows = self.index.by_class(q.retention_class, start=start, end=end, limit=5000)
        else:
            raise ArchiveError("search by encounter, patient, facility or retention class")
        gone = self.register.destroyed_encounters()
        return [r for r in rows if r["encounter_id"] not in gone]

    def _day_range(self, first: date | None, last: date | None) -> tuple[datetime, datetime]:
        tz = ZoneInfo(self.settings.archive.timezone)
        start = datetime.combine(first or date(1900, 1, 1), time(), tzinfo=tz)
        end = datetime.combine((last or date(9998, 12, 31)) + timedelta(days=1), time(), tzinfo=tz)
        return start, end

    def _hits(self, principal: Principal, rows: Sequence[dict[str, Any]]) -> list[Hit]:
        by_encounter: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_encounter.setdefault(r["encounter_id"], []).append(r)
        verified = self.index.last_verification(list(by_encounter))
        held, changes = self.register.held_encounters(), self.register.lock_changes()
        show_patient = principal.role is Role.RECORDS_OFFICER
        hits = []
        for eid, versions in by_encounter.items():
            newest = max(versions, key=lambda r: r["signed_at"])
            cls, until = newest["retention_class"], newest["retain_until"]
            if eid in changes and changes[eid][1] > until:
                cls, until = changes[eid]
            hits.append(
                Hit(
                    eid,
                    newest["facility"],
                    newest["admitted_at"],
                    newest["discharged_at"],
                    cls,
                    until,
                    eid in held,
                    len(versions),
                    verified.get(eid),
                    newest["patient_pseudonym"] if show_patient else None,
                )
            )
        return hits

    def _require_covered(
        self, principal: Principal, grants: Sequence[Grant], rows: Sequence[dict[str, Any]]
    ) -> None:
        # An empty match is refused like an uncovered one for an inspector: the answer must not
        # tell them what exists outside their grant.
        if not rows and principal.role not in GRANT_BOUND:
            raise ArchiveError("no catalogued record matched")
        if not rows or not all(_covered(principal, grants, r) for r in rows):
            raise AccessDeniedError(
                f"no active grant of {principal.username} covers these records: ask a records "
                "officer for a grant naming them"
            )

    def _full(self, indexed: dict[str, Any]) -> dict[str, Any]:
        """The authoritative catalog row behind an index hit (the index is only a pointer)."""
        table = self.catalog.find(encounter_id=indexed["encounter_id"])
        for row in table.to_pylist():
            if (row["object_key"], row["version_id"]) == (
                indexed["object_key"],
                indexed["version_id"],
            ):
                return dict(row)
        raise ArchiveError(
            f"encounter {indexed['encounter_id']} is indexed but not catalogued: "
            "delete <data_dir>/index and retry"
        )

    @contextmanager
    def _audited(
        self,
        principal: Principal,
        action: str,
        now: datetime,
        entities: Sequence[tuple[str, str]],
        query: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield a detail dict the body fills in; append and flush one event either way."""
        detail: dict[str, Any] = dict(query or {})
        try:
            yield detail
        except Exception as e:  # refusals and failures alike: audited, then raised
            detail.setdefault("entities", entities)
            self._record(principal, action, now, detail=detail, error=e)
            raise
        detail.setdefault("entities", entities)
        self._record(principal, action, now, detail=detail)

    def _record(
        self,
        principal: Principal,
        action: str,
        now: datetime,
        *,
        detail: dict[str, Any] | None = None,
        error: Exception | None = None,
        role: str | None = None,
    ) -> None:
        detail = dict(detail or {})
        entities = tuple(detail.pop("entities", ()))
        reason = None if error is None else f"{type(error).__name__}: {error}"[:300]
        self.audit.append(
            AuditEvent(
                actor=principal.username,
                role=role or principal.role.value,
                action=action,
                recorded=now,
                outcome="failure" if error else "success",
                entities=entities,
                reason=reason,
                detail={k: v if isinstance(v, int) else str(v) for k, v in detail.items()},
            )
        )
        self.audit.flush(now=now)


def index_dir(settings: Settings) -> Path:
    """Beside the catalog it is derived from (``<data_dir>/index`` by default)."""
    return settings.catalog_dir.with_name("index")


def _covered(principal: Principal, grants: Sequence[Grant], row: dict[str, Any]) -> bool:
    if principal.role not in GRANT_BOUND:
        return True
    return any(
        g.covers(
            facility=row["facility"],
            encounter_id=row["encounter_id"],
            patient_pseudonym=row["patient_pseudonym"],
        )
        for g in grants
    )


def _query_entities(q: Query) -> list[tuple[str, str]]:
    out = []
    if q.encounter_id:
        out.append(("encounter", q.encounter_id))
    if q.patient_pseudonym:
        out.append(("patient", q.patient_pseudonym))
    return out


def _label(encounter_id: str | None, pseudonym: str | None, now: datetime) -> str:
    # Not the pseudonym itself (hidden from inspectors): a short digest of it names the file.
    digest = hashlib.sha256((pseudonym or "").encode()).hexdigest()[:10]
    what = f"encounter-{encounter_id}" if encounter_id else f"patient-{digest}"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in what)
    return f"dossier-{safe}-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
