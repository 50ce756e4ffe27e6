"""`stack up` with ``keys.provider = "transit"``: the stack starts its own OpenBao and the nightly
run seals under the transit key; after `stack down` and `stack up` again (OpenBao restarted from
its storage, unsealed from init.json, the archive's token renewed) verification opens every record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.core.sections import KeySettings
from archive.core.settings import ArchiveSettings
from archive.seal import TransitKeyring, open_keys
from archive.seal.transit import TRANSIT_PREFIX
from infra import openbao, stack
from infra.ports import throwaway_settings
from infra.settings import AppSettings
from tests.support.nightly import make_export, run_once
from verification.config import VerificationSettings
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection

pytestmark = pytest.mark.integration


@pytest.fixture
def transit_stack(tmp_path: Path) -> Iterator[AppSettings]:
    settings = throwaway_settings(
        tmp_path / "var",
        keys=KeySettings(provider="transit"),
        archive=ArchiveSettings(source_roots=(tmp_path,), workers=1),
    )
    try:
        yield settings
    finally:
        stack.down(settings)


def _verify(settings: AppSettings, out: Path) -> tuple[Status, int, str | None]:
    vsettings = VerificationSettings(output_dir=out, workers=1)
    plan = RunPlan.create(
        settings, vsettings, selection=Selection(mode=Mode.FULL), now=datetime.now(UTC)
    )
    with VerificationRun.start(settings, vsettings, plan) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        report = run.finish()
    return report.status, report.selected, report.failure_message


def test_stack_up_with_transit_keys_archives_verifies_and_still_opens_after_a_restart(
    transit_stack: AppSettings, tmp_path: Path
) -> None:
    settings = transit_stack
    assert settings.uses_embedded_openbao
    rows = {r.name: r for r in stack.up(settings)}
    assert rows["keyring"].healthy, rows["keyring"].detail
    assert settings.transit_url in rows["keyring"].detail
    assert openbao.process(settings).pid() is not None
    assert isinstance(open_keys(settings), TransitKeyring)

    export = make_export(tmp_path / "export", encounters=12, seed=1)
    summary = run_once(settings, export)
    assert summary.archived == len(export.summary.in_window) > 0, summary
    assert summary.failed == {}, summary
    kek_ids = set(Catalog.open(settings.catalog_dir).rows().column("kek_id").to_pylist())
    assert kek_ids == {TRANSIT_PREFIX + settings.keys.transit_key}, kek_ids

    stopped = stack.down(settings)
    assert "openbao" in stopped
    assert openbao.process(settings).pid() is None
    assert not openbao.healthy(settings)

    rows = {r.name: r for r in stack.up(settings)}  # OpenBao from its storage, unsealed again
    assert all(r.healthy for r in rows.values()), rows
    # Every record: present, unchanged, unsealed through the restarted OpenBao, signed, PDF/A.
    assert _verify(settings, tmp_path / "verification") == (Status.PASSED, summary.archived, None)
