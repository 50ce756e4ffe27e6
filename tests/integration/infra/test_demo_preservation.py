"""The demo's lasting-proof step on the real stack: a nightly run's record, judged 30 years
ahead, lapses (``evidence.expired``) until the renewal job stamps its tree's proof with the
long-lived archive TSA, and then holds — through the renewal job, the current-evidence reader
and ``verify-file --at``'s judgement together, as a records officer would run them."""

from __future__ import annotations

import re

import pytest

from infra.demo_preservation import show_preservation
from infra.settings import AppSettings as Settings
from tests.support.nightly import make_export, run_once


def test_a_record_judged_30_years_ahead_holds_only_after_the_archive_tsa_renewed_it(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    export = make_export(tmp_path_factory.mktemp("export"), encounters=8, seed=41)
    summary = run_once(settings, export)
    assert summary.archived >= 1
    show_preservation(settings, summary.run_id)
    out = capsys.readouterr().out
    assert re.search(r"before any renewal\s+FAILED .*evidence\.expired", out), out
    assert re.search(r"evidence renew \(archive TSA\): 1 tree\(s\), \d+ record\(s\), 1 TSA", out)
    assert re.search(r"after the renewal\s+PASSED\n", out), out
    ers = next((settings.data_dir / "demo").glob("record-*.ers"))
    assert ers.stat().st_mode & 0o777 == 0o600
