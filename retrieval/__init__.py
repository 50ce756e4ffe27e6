"""Inspector retrieval: find, view and export archived records, for the people allowed to.

In: an identity (a password, or a session token) and a question (a :class:`Query`, an encounter
to view or export, a grant to issue, the audit log to read). Out: :class:`Hit` rows, a zipped
BagIt dossier (:class:`ExportResult`), :class:`Grant` records, audit events; or a refusal
(:class:`AuthenticationError` 401, :class:`AccessDeniedError` 403). Every call is authorised
and audited by :class:`Retrieval`; records are only read, never changed.

- ``access``: roles, accounts, session tokens and inspectors' grants (who may do what);
- ``service``: :class:`Retrieval`, the one API the CLI and the portal call;
- ``index``: the SQLite search index derived from the verified catalog;
- ``dossier``: the BagIt export of documents with a fresh verification report each, their
  evidence records (``evidence``) and, on request, renewed copies; ``bag``: BagIt and README.

The names below are loaded on first use: every CLI command imports :mod:`retrieval.errors`, and
that must not pull in pyHanko, the verifier and BagIt (a second or more) for commands that never
retrieve anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.core.lazy import lazy_exports

__all__ = [
    "GRANT_BOUND",
    "MAX_RESULTS",
    "PERMISSIONS",
    "AccessDeniedError",
    "AccessRegister",
    "Action",
    "AuthenticationError",
    "DossierError",
    "ExportResult",
    "ExportedDocument",
    "Grant",
    "Hit",
    "LastVerification",
    "Principal",
    "Query",
    "Retrieval",
    "Role",
    "ScryptParams",
    "SearchIndex",
    "SearchResult",
    "Session",
    "TokenRefusedError",
    "TokenService",
    "User",
    "UserStore",
    "access_dir",
    "export_dossier",
    "index_dir",
    "new_grant",
    "newest_per_encounter",
    "require",
    "validate_zip",
]

if TYPE_CHECKING:
    from retrieval.access import (
        GRANT_BOUND,
        PERMISSIONS,
        AccessRegister,
        Action,
        Grant,
        Principal,
        Role,
        ScryptParams,
        TokenService,
        User,
        UserStore,
        access_dir,
        new_grant,
        require,
    )
    from retrieval.dossier import (
        ExportedDocument,
        ExportResult,
        export_dossier,
        newest_per_encounter,
        validate_zip,
    )
    from retrieval.errors import (
        AccessDeniedError,
        AuthenticationError,
        DossierError,
        TokenRefusedError,
    )
    from retrieval.index import LastVerification, SearchIndex
    from retrieval.service import (
        MAX_RESULTS,
        Hit,
        Query,
        Retrieval,
        SearchResult,
        Session,
        index_dir,
    )
else:
    __getattr__ = lazy_exports(
        __name__, __all__, ("errors", "access", "index", "dossier", "service")
    )
