"""A small archive with accounts, for the portal's HTTP and browser tests.

Archiving takes seconds, so each test module archives once (module-scoped fixtures built on the
session stack) and its tests share the bucket; each test that changes grants uses its own
inspector names or revokes what it issued.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.catalog import Catalog
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from retrieval import Retrieval, Role
from tests.support.nightly import Export, make_export, run_once

PASSWORD = "correct horse battery"
ACCOUNTS = {
    "admin.minh": Role.ADMIN,
    "ro.binh": Role.RECORDS_OFFICER,
    "insp.an": Role.INSPECTOR,
    "insp.khac": Role.INSPECTOR,
    "insp.tam": Role.INSPECTOR,
    "audit.lan": Role.AUDITOR,
}


@dataclass(frozen=True)
class ArchivedSite:
    settings: Settings
    export: Export
    rows: list[dict[str, Any]]  # catalog rows

    def patient_id_of(self, row: dict[str, Any]) -> str:
        """The clear patient id behind a row (tests only: the archive never holds it)."""
        r = Retrieval.open(self.settings)
        try:
            return next(p for p in self.export.names if r.pseudonym(p) == row["patient_pseudonym"])
        finally:
            r.index.close()


def archived_site(stack_settings: Settings, root: Path, *, encounters: int = 24) -> ArchivedSite:
    """A fresh bucket + catalog, one archive run, and the accounts of :data:`ACCOUNTS`."""
    # data_dir stays the stack's (keyring, PKI, S3 credentials live there); what the portal
    # derives from the catalog directory (index, access register, audit log) is this site's own.
    settings = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": f"portal-{secrets.token_hex(4)}"}),
            "catalog": stack_settings.catalog.model_copy(update={"catalog_dir": root / "catalog"}),
            "archive": stack_settings.archive.model_copy(update={"workers": 1}),
            "portal": stack_settings.portal.model_copy(update={"export_dir": root / "exports"}),
        }
    )
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    export = make_export(root / "export", encounters=encounters, seed=41)
    assert run_once(settings, export).archived
    r = Retrieval.open(settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.minh", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.minh", PASSWORD, now=now)
    for name, role in ACCOUNTS.items():
        if role is not Role.ADMIN:
            r.add_user(admin, name, role, PASSWORD, now=now)
    r.index.close()
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    assert len(rows) >= 4, "the tests need several archived encounters"
    return ArchivedSite(settings, export, rows)
