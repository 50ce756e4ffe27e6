"""A record that cannot be archived is counted, listed for the operator, and never stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive.catalog import Catalog
from infra.settings import AppSettings as Settings
from tests.support.nightly import DAY, Export, make_export, run_once

pytestmark = pytest.mark.integration


def _poisoned_export(tmp_path: Path) -> tuple[Export, set[str]]:
    """A sample export whose first patient's name no shipped font can render."""
    export = make_export(tmp_path / "export", encounters=12, seed=5)
    patients = (export.path / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    victim = json.loads(patients[0])
    victim["name"][0]["text"] += " 中文"  # no font the renderer ships covers CJK
    patients[0] = json.dumps(victim, ensure_ascii=False)
    (export.path / "Patient.ndjson").write_text("\n".join(patients) + "\n", encoding="utf-8")
    affected: set[str] = set()
    for line in (export.path / "Encounter.ndjson").read_text(encoding="utf-8").splitlines():
        try:
            encounter = json.loads(line)
        except ValueError:
            continue
        if encounter.get("subject", {}).get("reference") == f"Patient/{victim['id']}":
            affected.add(encounter["id"])
    return export, affected & set(export.summary.in_window)


def test_an_unrenderable_record_fails_alone_and_is_listed(
    settings: Settings, tmp_path: Path
) -> None:
    export, failing = _poisoned_export(tmp_path)
    if not failing:
        pytest.fail("the sample's first patient should have an encounter in the window")

    summary = run_once(settings, export)
    assert summary.failed == {"render.error": len(failing)}
    assert summary.archived == len(export.summary.in_window) - len(failing)
    listed = (settings.data_dir / "runs" / f"{summary.run_id}.failures.jsonl").read_text()
    entries = [json.loads(line) for line in listed.splitlines()]
    assert {e["encounter_id"] for e in entries} == failing
    assert all(e["reason"].startswith("render.error") for e in entries)
    catalogued = {r["encounter_id"] for r in Catalog.open(settings.catalog_dir).rows().to_pylist()}
    assert not catalogued & failing


def test_a_nightly_flow_run_with_failed_records_ends_failed(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect must show the run as Failed (and alert), with the counts still attached."""
    from flows import nightly
    from flows.outcome import summary_of

    export, failing = _poisoned_export(tmp_path)
    monkeypatch.setattr(nightly, "load_settings", lambda: settings)
    state = nightly.nightly_archive(since=DAY, source=str(export.path), return_state=True)
    assert state.is_failed()
    assert f"{len(failing)} record(s) failed" in (state.message or "")
    summary = state.result(raise_on_failure=False)
    assert isinstance(summary, dict)
    assert summary["failed"] == {"render.error": len(failing)}
    assert summary["archived"] == len(export.summary.in_window) - len(failing)
    again = summary_of(nightly.nightly_archive, since=DAY, source=str(export.path))
    assert again["already_archived"] == summary["archived"]  # the counts, not an exception
