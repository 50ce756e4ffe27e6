"""A run reads only exports under the configured source roots: anyone who can start a run (the
Prefect API, a shell) must not get the hospital key to sign and lock data of their choosing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive.audit import AuditLog
from archive.core.errors import SourceOutsideRootsError
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from tests.support.nightly import make_export, record_versions, run_once

pytestmark = pytest.mark.integration


def _rooted(settings: Settings, *roots: Path) -> Settings:
    archive = settings.archive.model_copy(update={"source_roots": roots})
    return settings.model_copy(update={"archive": archive})


@pytest.mark.parametrize("how", ["outside", "dotdot", "symlink"])
def test_a_source_outside_the_roots_is_refused_before_anything_is_stored_and_audited(
    settings: Settings, tmp_path: Path, how: str
) -> None:
    roots = tmp_path / "exports"
    roots.mkdir()
    evil = make_export(tmp_path / "evil-Nguyen-Van-A", encounters=4, seed=3)
    source = {
        "outside": evil.path,
        "dotdot": roots / ".." / evil.path.name,
        "symlink": roots / "tonight",
    }[how]
    if how == "symlink":
        source.symlink_to(evil.path, target_is_directory=True)
    rooted = _rooted(settings, roots)
    export = evil.__class__(source, evil.summary, evil.window, evil.names, evil.secrets)

    with pytest.raises(SourceOutsideRootsError) as refused:
        run_once(rooted, export)

    assert refused.value.exit_code == 2
    assert "Nguyen" not in str(refused.value)
    store = S3ObjectStore.from_settings(rooted)
    assert list(record_versions(store)) == []
    assert not rooted.catalog_dir.exists()  # not even the run lock was taken
    events = AuditLog.for_settings(rooted, store).show(action="archive.run.refused")
    assert len(events) == 1
    event = events[0]
    assert (event.outcome, event.reason) == ("failure", "source outside the configured roots")
    assert len(str(event.detail["source_sha256"])) == 64
    assert "Nguyen" not in json.dumps(event.to_json())  # only a digest of the path


def test_a_source_under_a_root_is_archived(settings: Settings, tmp_path: Path) -> None:
    roots = tmp_path / "exports"
    export = make_export(roots / "tonight", encounters=20, seed=11)
    summary = run_once(_rooted(settings, roots / "." / ".." / "exports"), export)
    assert summary.archived == len(export.summary.in_window) > 0
