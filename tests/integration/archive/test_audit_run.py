"""Every archive run leaves one audit event (counts only) in the locked audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive import wiring
from archive.audit import AuditLog
from infra.settings import AppSettings as Settings
from tests.support.nightly import make_export, run_once

pytestmark = pytest.mark.integration


def test_an_archive_run_is_audited(settings: Settings, tmp_path: Path) -> None:
    summary = run_once(settings, make_export(tmp_path / "export", encounters=8, seed=3))
    log = AuditLog.for_settings(settings, wiring.open_store(settings))
    [event] = log.show(action="archive.run")
    assert ("run", summary.run_id) in event.entities
    assert event.detail["archived"] == summary.archived
    assert log.verify_chain().passed
