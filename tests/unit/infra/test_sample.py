"""The sample export: deterministic, realistic Vietnamese data, and an honest answer key."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from archive.sources import Window, fhir, validation
from infra.sample import MANIFEST_NAME, BadKind, SampleSummary, write_sample_export

DAY = date(2025, 7, 1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return write_sample_export(tmp_path_factory.mktemp("sample"), encounters=1000, seed=7, day=DAY)


def _resources(summary: SampleSummary, resource_type: str) -> list[dict[str, Any]]:
    """The lines of one file that parse (planted broken lines are skipped)."""
    result = []
    for raw in (summary.out_dir / f"{resource_type}.ndjson").read_bytes().splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            result.append(value)
    return result


def _file_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = write_sample_export(tmp_path / "a", encounters=300, seed=11, day=DAY)
    second = write_sample_export(tmp_path / "b", encounters=300, seed=11, day=DAY)
    other = write_sample_export(tmp_path / "c", encounters=300, seed=12, day=DAY)
    assert _file_bytes(tmp_path / "a") == _file_bytes(tmp_path / "b")
    assert first.planted == second.planted
    assert first.in_window == second.in_window
    assert (
        _file_bytes(tmp_path / "c")["Encounter.ndjson"]
        != _file_bytes(tmp_path / "a")["Encounter.ndjson"]
    )
    assert other.in_window != first.in_window


def test_thousand_encounters_in_a_few_seconds(tmp_path: Path) -> None:
    began = time.perf_counter()
    summary = write_sample_export(tmp_path, encounters=1000, seed=3, day=DAY)
    elapsed = time.perf_counter() - began
    assert summary.encounters == 1000
    assert elapsed < 10, f"1,000 encounters took {elapsed:.1f} s"


def test_files_and_manifest_look_like_a_bulk_export(sample: SampleSummary) -> None:
    manifest = json.loads((sample.out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert set(manifest) >= {"transactionTime", "request", "output"}
    assert "$export" in manifest["request"]
    taken = datetime.fromisoformat(manifest["transactionTime"])
    assert taken >= Window.for_day(DAY).end
    listed = {item["type"]: item for item in manifest["output"]}
    assert set(listed) == set(fhir.BUNDLE_ORDER)
    for resource_type, item in listed.items():
        assert item["url"].endswith(f"/{resource_type}.ndjson")
        lines = (sample.out_dir / f"{resource_type}.ndjson").read_bytes().splitlines()
        assert item["count"] == len(lines)
    assert sample.files == tuple(f"{t}.ndjson" for t in fhir.BUNDLE_ORDER)
    assert sample.size_bytes == sum((sample.out_dir / f).stat().st_size for f in sample.files)


def test_names_are_nfc_vietnamese_with_diacritics(sample: SampleSummary) -> None:
    names = [p["name"][0]["text"] for p in _resources(sample, "Patient")]
    names += [p["name"][0]["text"] for p in _resources(sample, "Practitioner")]
    assert len(names) > 900
    clean = [n for n in names if n.isprintable()]  # planted control characters aside
    assert all(unicodedata.is_normalized("NFC", n) for n in clean)
    with_marks = [n for n in clean if n != unicodedata.normalize("NFKD", n)]
    assert len(with_marks) / len(clean) > 0.9
    families = Counter(n.split()[0] for n in clean)
    assert families.most_common(1)[0][0] == "Nguyễn"
    assert {"Trần", "Lê", "Phạm", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô"} <= set(families)


def test_identifiers_have_the_vietnamese_formats(sample: SampleSummary) -> None:
    for patient in _resources(sample, "Patient"):
        cccd = fhir.identifier(patient, fhir.SYS_CCCD) or ""
        bhyt = fhir.identifier(patient, fhir.SYS_BHYT) or ""
        assert re.fullmatch(r"0[0-9]{2}[0-3][0-9]{8}", cccd), "12 digits, province first"
        assert re.fullmatch(r"[A-Z]{2}[1-5][0-9]{12}", bhyt), "15 characters like DN4010123456789"
        assert cccd[:3] == "0" + bhyt[3:5], "the same province in both"
        assert fhir.identifier(patient, fhir.SYS_PATIENT)
    for organization in _resources(sample, "Organization"):
        assert re.fullmatch(r"[0-9]{5}", fhir.identifier(organization, fhir.SYS_FACILITY) or "")


def test_clinical_content_covers_what_retention_needs(sample: SampleSummary) -> None:
    codes = Counter(c["code"]["coding"][0]["code"] for c in _resources(sample, "Condition"))
    procedures = {p["code"]["coding"][0]["code"] for p in _resources(sample, "Procedure")}
    encounters = _resources(sample, "Encounter")
    accidents = Counter(fhir.extension_code(e, fhir.EXT_ACCIDENT) for e in encounters)
    results = Counter(fhir.extension_code(e, fhir.EXT_TREATMENT_RESULT) for e in encounters)
    assert any(c.startswith("F") for c in codes), "mental illness (chapter V)"
    assert any(c[0] in "VWXY" for c in codes), "external causes"
    assert {"1", "2", "8"} <= set(accidents), "traffic, work and domestic accidents"
    assert 0 < results["5"] < 0.08 * len(encounters), "a few deaths"
    assert procedures & {"55.69", "86.82", "85.50"}, "transplant or cosmetic surgery (rare)"
    deceased = [p for p in _resources(sample, "Patient") if "deceasedDateTime" in p]
    assert len(deceased) == results["5"]
    classes = Counter(e["class"]["code"] for e in encounters)
    assert set(classes) == {"AMB", "IMP", "EMER"}


def test_observations_and_notes(sample: SampleSummary) -> None:
    observations = _resources(sample, "Observation")
    loinc = Counter(o["code"]["coding"][0]["code"] for o in observations)
    assert {"8867-4", "8480-6", "8462-4", "8310-5", "29463-7", "718-7", "2345-7"} <= set(loinc)
    notes = [o["valueString"] for o in observations if "valueString" in o]
    assert loinc[fhir.LOINC_HOSPITAL_COURSE] == len(notes) > 900
    lengths = sorted(len(n) for n in notes)
    assert 2600 <= lengths[0] <= lengths[-1] <= 9800, "about 1 to 3 pages"
    assert lengths[len(lengths) // 4] < 5000 < lengths[3 * len(lengths) // 4], "varying"
    quantities = [o["valueQuantity"] for o in observations if "valueQuantity" in o]
    assert all({"value", "unit"} <= set(q) for q in quantities)


def test_window_mix_and_answer_key(sample: SampleSummary) -> None:
    window = Window.for_day(DAY)
    planted = len(sample.planted)
    assert sample.encounters == (
        len(sample.in_window) + sample.outside_window + sample.not_finished + planted
    )
    assert 0.7 < len(sample.in_window) / sample.encounters < 0.85
    assert sample.outside_window > 0.08 * sample.encounters
    assert sample.not_finished > 0.03 * sample.encounters
    assert planted == round(0.05 * sample.encounters)
    assert all(count >= 7 for count in sample.bad_counts().values())
    assert sample.orphan_lines >= 1
    by_id = {e["id"]: e for e in _resources(sample, "Encounter")}
    for enc_id in sample.in_window:
        end = fhir.parse_datetime(by_id[enc_id]["period"]["end"], date_tz=window.tz)
        assert end in window
        assert by_id[enc_id]["status"] == "finished"
    ends = [e["period"].get("end") for e in by_id.values()]
    assert "2025-07-01T00:00:00+07:00" in ends
    assert "2025-07-02T00:00:00+07:00" in ends
    assert "2025-06-30T23:59:59+07:00" in ends
    open_ones = [e for e in by_id.values() if e["status"] == "in-progress"]
    assert open_ones
    assert all("end" not in e["period"] for e in open_ones)


def test_every_bad_kind_is_planted_and_described(sample: SampleSummary) -> None:
    kinds = {p.kind for p in sample.planted}
    assert kinds == set(BadKind)
    ids = [p.encounter_id for p in sample.planted if p.kind is BadKind.PATH_SEPARATOR_ID]
    assert any(i.startswith("../") for i in ids)
    assert any(i.startswith("..\\") for i in ids)
    confusable = [p.encounter_id for p in sample.planted if p.kind is BadKind.CONFUSABLE_ID]
    assert any(not i.isascii() for i in confusable)
    assert sample.expected_line_entries == sample.orphan_lines + sum(
        p.bad_line_type is not None for p in sample.planted
    )


def test_no_bad_share_means_no_bad_records(tmp_path: Path) -> None:
    summary = write_sample_export(tmp_path, encounters=200, seed=5, day=DAY, bad_share=0.0)
    assert summary.planted == ()
    assert summary.orphan_lines == 0
    for name in summary.files:
        for raw in (tmp_path / name).read_bytes().splitlines():
            value = json.loads(raw)
            assert validation.text_problem(value) is None
            assert validation.is_valid_id(value["id"])


def test_invalid_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_sample_export(tmp_path, encounters=-1, seed=1, day=DAY)
    with pytest.raises(ValueError):
        write_sample_export(tmp_path, encounters=1, seed=1, day=DAY, bad_share=1.5)
    with pytest.raises(ValueError, match="time zone"):
        write_sample_export(tmp_path, encounters=1, seed=1, day=DAY, tz="Mars/Olympus")
