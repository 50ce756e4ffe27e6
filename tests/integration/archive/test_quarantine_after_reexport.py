"""Regression: a re-export that shifts other lines must not turn quarantine storage into a
conflict that fails every rerun of that day (and leaves the run's records uncatalogued)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from infra.settings import AppSettings as Settings
from tests.support.nightly import make_export, run_once

pytestmark = pytest.mark.integration


def _reexport_with_an_extra_line(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    lines = (dst / "Observation.ndjson").read_bytes().split(b"\n")
    extra = json.loads(lines[0])
    extra["id"] = "extra-observation-1"
    extra["encounter"] = {"reference": "Encounter/another-night-1"}
    (dst / "Observation.ndjson").write_bytes(json.dumps(extra).encode() + b"\n" + b"\n".join(lines))
    manifest = json.loads((dst / "manifest.json").read_text())
    for output in manifest["output"]:
        if output["type"] == "Observation" and "count" in output:
            output["count"] += 1
    (dst / "manifest.json").write_text(json.dumps(manifest))


def test_rerun_after_a_reexport_stores_quarantine_and_catalogues_the_records(
    settings: Settings, tmp_path: Path
) -> None:
    first_export = make_export(tmp_path / "a", encounters=30, seed=11)
    first = run_once(settings, first_export)
    assert first.failed == {}
    _reexport_with_an_extra_line(first_export.path, tmp_path / "b")
    again = run_once(settings, replace(first_export, path=tmp_path / "b"))
    assert again.failed == {}, again.failed
    assert again.quarantined_total == first.quarantined_total
    assert again.already_archived == first.archived
