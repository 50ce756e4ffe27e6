"""A record that cannot be archived is counted, listed for the operator, and never stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.settings import Settings
from tests.integration.test_nightly import _export, run_once

pytestmark = pytest.mark.integration


def test_an_unrenderable_record_fails_alone_and_is_listed(
    settings: Settings, tmp_path: Path
) -> None:
    export = _export(tmp_path / "export", encounters=12, seed=5)
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
    failing = affected & set(export.summary.in_window)
    if not failing:
        pytest.skip("the sample's first patient has no encounter in the window")

    summary = run_once(settings, export)
    assert summary.failed == {"render.error": len(failing)}
    assert summary.archived == len(export.summary.in_window) - len(failing)
    listed = (settings.data_dir / "runs" / f"{summary.run_id}.failures.jsonl").read_text()
    entries = [json.loads(line) for line in listed.splitlines()]
    assert {e["encounter_id"] for e in entries} == failing
    assert all(e["reason"].startswith("render.error") for e in entries)
    catalogued = {r["encounter_id"] for r in Catalog.open(settings.catalog_dir).rows().to_pylist()}
    assert not catalogued & failing
