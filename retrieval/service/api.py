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

from pathlib import Path

from archive import wiring
from archive.audit import AuditLog
from archive.store import ObjectStore
from retention import Register
from retrieval.access import AccessRegister, TokenService, UserStore, access_dir
from retrieval.index import SearchIndex
from retrieval.index_seal import index_key
from retrieval.service.export import RecordExport
from retrieval.service.identities import Identities
from retrieval.service.oversight import Oversight
from verification.config import HoldSet
from verification.evidence import Environment
from verification.settings import VerifySettings as Settings
from verification.settings import weak_table


class Retrieval(Identities, RecordExport, Oversight):
    """Identities, records (search, view, export) and oversight (grants, the audit log) on one
    set of parts; the constructor takes them by keyword, :meth:`open` builds them."""

    @classmethod
    def open(cls, settings: Settings, *, store: ObjectStore | None = None) -> Retrieval:
        store = store or wiring.open_store(settings)
        keyring = wiring.open_keyring(settings)
        catalog = wiring.open_catalog(settings, create=True)
        trust = wiring.trust_policy(settings, catalog=catalog)

        def env(holds: HoldSet) -> Environment:
            return Environment(
                store=store,
                keys=keyring,
                seal=settings.seal,
                trust=trust,
                holds=holds,
                settings=settings.verification,
                weak=weak_table(settings),
            )

        return cls(
            settings=settings,
            store=store,
            catalog=catalog,
            index=SearchIndex.open(index_dir(settings), seal_key=index_key(keyring.chain_key())),
            register=Register.for_settings(settings, store),
            access=AccessRegister.for_settings(settings, store),
            users=UserStore(access_dir(settings) / "users.json"),
            tokens=TokenService.for_directory(access_dir(settings)),
            audit=AuditLog.for_settings(settings, store),
            keyring=keyring,
            env_factory=env,
        )


def index_dir(settings: Settings) -> Path:
    """Beside the catalog it is derived from (``<data_dir>/index`` by default)."""
    return settings.catalog_dir.with_name("index")
