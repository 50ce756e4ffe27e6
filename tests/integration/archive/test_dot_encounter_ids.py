"""Regression: encounter ids "." and ".." fit the FHIR id pattern, were archived, and then broke the
dossier export (a record's folder in the bag is named by its encounter id). From export to
dossier on the real stack: they are quarantined as invalid-id, the index names them only by a
keyed digest, and the patient's dossier still exports and validates."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from archive.catalog import Catalog, CatalogRow
from archive.seal import LocalKeyring
from infra.settings import AppSettings as Settings
from retrieval import export_dossier, newest_per_encounter, validate_zip
from tests.support.nightly import Export, make_export, run_once
from verification.config import HoldSet
from verification.worker import environment

pytestmark = pytest.mark.integration

DOTS = (".", "..")


def _plant_dot_encounters(export: Export) -> str:
    """Copies of one good in-window Encounter under the ids "." and ".."; returns its patient."""
    path = export.path / "Encounter.ndjson"
    lines = path.read_bytes().split(b"\n")
    good = export.summary.in_window[0]
    original = next(r for r in map(_resource, lines) if r.get("id") == good)
    planted = [json.dumps({**original, "id": dots}).encode() for dots in DOTS]
    path.write_bytes(b"\n".join([*planted, *lines]))
    manifest = json.loads((export.path / "manifest.json").read_text())
    for output in manifest["output"]:
        if output["type"] == "Encounter" and "count" in output:
            output["count"] += len(planted)
    (export.path / "manifest.json").write_text(json.dumps(manifest))
    return str(original["subject"]["reference"]).split("/", 1)[1]


def _resource(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:  # the sample plants malformed lines too
        return {}
    return value if isinstance(value, dict) else {}


def test_dot_encounter_ids_are_quarantined_and_the_dossier_still_exports(
    settings: Settings, tmp_path: Path
) -> None:
    export = make_export(tmp_path / "export", encounters=12, seed=9)
    patient = _plant_dot_encounters(export)
    summary = run_once(settings, export)
    assert summary.failed == {}, summary.failed

    rows = [CatalogRow.from_dict(r) for r in Catalog.open(settings.catalog_dir).rows().to_pylist()]
    assert not [r for r in rows if r.encounter_id in DOTS], "a dot id was archived"

    keys = LocalKeyring.open(settings.keyring_dir)
    index_text = (settings.data_dir / "quarantine" / f"{summary.run_id}.jsonl").read_text()
    held = {
        line["encounter_id_digest"]: line["reason"]
        for line in map(json.loads, index_text.splitlines())
        if line["scope"] == "encounter"
    }
    for dots in DOTS:
        assert held.get(keys.quarantine_digest(dots)) == "invalid-id"
        assert hashlib.sha256(dots.encode()).hexdigest() not in index_text

    mine = newest_per_encounter([r for r in rows if r.patient_pseudonym == keys.pseudonym(patient)])
    assert mine, "the good encounter of the planted copies was archived"
    env = environment(settings, settings.verification, HoldSet())
    result = export_dossier(
        mine, env=env, out_dir=tmp_path / "out", label="d", now=datetime.now(UTC), context={}
    )
    validate_zip(result.path)
    with zipfile.ZipFile(result.path) as z:
        parts = {p for name in z.namelist() for p in PurePosixPath(name).parts}
    assert not parts & set(DOTS)
