"""The Bulk Data collector on real files: the sample's answer key, hand-made edge cases, memory."""

from __future__ import annotations

import functools
import hashlib
import json
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from archive.seal.pseudonyms import quarantine_digest
from archive.sources import (
    CollectedItem,
    EncounterBundle,
    QuarantineEntry,
    QuarantineReason,
    QuarantineScope,
    SourceError,
    Window,
    collect,
    fhir,
)
from infra.sample import (
    EXPECTED_REASON,
    MANIFEST_NAME,
    SampleSummary,
    write_sample_export,
)

DAY = date(2025, 7, 1)
_KEYED = functools.partial(quarantine_digest, b"test secret" * 3)
WINDOW = Window.for_day(DAY)
R = QuarantineReason
VN = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class Collected:
    sample: SampleSummary
    items: list[CollectedItem]

    @property
    def bundles(self) -> list[EncounterBundle]:
        return [i for i in self.items if isinstance(i, EncounterBundle)]

    @property
    def entries(self) -> list[QuarantineEntry]:
        return [i for i in self.items if isinstance(i, QuarantineEntry)]


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Collected:
    sample = write_sample_export(
        tmp_path_factory.mktemp("export"), encounters=1000, seed=2025, day=DAY
    )
    return Collected(sample, list(collect(sample.out_dir, window=WINDOW)))


# --- the sample's answer key ------------------------------------------------------------------


def test_good_encounters_in_the_window_are_all_collected_and_none_outside(
    collected: Collected,
) -> None:
    ids = [b.encounter_id for b in collected.bundles]
    assert ids == sorted(ids)
    assert tuple(ids) == collected.sample.in_window
    assert all(b.discharged_at in WINDOW for b in collected.bundles)


def test_every_planted_problem_comes_back_with_its_reason(collected: Collected) -> None:
    expected = Counter((EXPECTED_REASON[p.kind], p.encounter_id) for p in collected.sample.planted)
    held = [e for e in collected.entries if e.scope is QuarantineScope.ENCOUNTER]
    assert Counter((e.reason, e.encounter_id) for e in held) == expected
    lines = [e for e in collected.entries if e.scope is QuarantineScope.LINE]
    assert len(lines) == collected.sample.expected_line_entries
    orphans = [e for e in lines if e.encounter_id is None]
    assert len(orphans) == collected.sample.orphan_lines
    assert {e.reason for e in orphans} == {R.MALFORMED_JSON}
    assert {e.reason for e in held} == set(EXPECTED_REASON.values())


def test_bad_lines_are_kept_whole_and_tied_to_their_encounter(collected: Collected) -> None:
    for entry in collected.entries:
        path = collected.sample.out_dir / entry.source_file
        lines = path.read_bytes().split(b"\n")
        assert lines[entry.line_number - 1] == entry.raw_line
        if entry.scope is QuarantineScope.ENCOUNTER:
            assert entry.resource_type == "Encounter"
            assert entry.resource_id == entry.encounter_id
    held = {e.encounter_id for e in collected.entries if e.scope is QuarantineScope.ENCOUNTER}
    tied = {e.encounter_id for e in collected.entries if e.scope is QuarantineScope.LINE}
    assert tied - {None} <= held


def test_output_is_sorted_by_encounter_id(collected: Collected) -> None:
    first_encounter = next(
        i
        for i, item in enumerate(collected.items)
        if isinstance(item, EncounterBundle) or item.scope is QuarantineScope.ENCOUNTER
    )
    head = collected.items[:first_encounter]
    assert all(isinstance(i, QuarantineEntry) and i.scope is QuarantineScope.LINE for i in head)
    order = [
        enc_id
        for item in collected.items[first_encounter:]
        if (enc_id := _encounter_id(item)) is not None
    ]
    ids = list(dict.fromkeys(order))
    known = {*collected.sample.in_window, *(p.encounter_id for p in collected.sample.planted)}
    assert set(ids) <= known
    assert ids == sorted(ids)


def _encounter_id(item: CollectedItem) -> str | None:
    if isinstance(item, EncounterBundle):
        return item.encounter_id
    return item.encounter_id if item.scope is QuarantineScope.ENCOUNTER else None


def test_every_reference_is_resolved_inside_the_bundle(collected: Collected) -> None:
    for item in collected.bundles:
        bundle = item.bundle
        entries = bundle["entry"]
        assert bundle["id"] == item.encounter_id
        assert [e["resource"]["resourceType"] for e in entries[:3]] == [
            "Encounter",
            "Patient",
            "Organization",
        ]
        assert all(
            e["fullUrl"] == f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in entries
        )
        encounter = entries[0]["resource"]
        for entry in entries:
            for ref in fhir.iter_references(entry["resource"]):
                if ref.resource_type != "Encounter":
                    assert fhir.resolve(bundle, ref) is not None, ref
        clinical = [e["resource"] for e in entries[1:] if "encounter" in e["resource"]]
        assert all(
            fhir.reference(r, "encounter") == ("Encounter", item.encounter_id) for r in clinical
        )
        assert {r["resourceType"] for r in clinical} >= {"Condition", "Observation"}
        patient = fhir.resolve(bundle, fhir.reference(encounter, "subject"))
        assert patient is not None
        assert patient["id"] == item.patient_id


def test_bundle_facts_for_the_catalog_and_retention(collected: Collected) -> None:
    deaths = [b for b in collected.bundles if b.treatment_result == "5"]
    assert deaths
    assert all(b.patient_deceased and b.discharge_disposition == "exp" for b in deaths)
    assert any(any(c.startswith("F") for c in b.icd10_codes) for b in collected.bundles)
    assert {b.accident_code for b in collected.bundles} >= {"0", "1", "2"}
    for item in collected.bundles:
        conditions = fhir.resources_of(item.bundle, "Condition")
        assert item.icd10_codes == tuple(
            sorted({c["code"]["coding"][0]["code"] for c in conditions})
        )
        assert item.facility_code in {"17001", "17002", "17011"}
        assert item.encounter_class in {"AMB", "IMP", "EMER"}
        assert item.admitted_at <= item.discharged_at
        assert item.record_number
        assert item.episode_key


def test_canonical_bytes_are_the_bundle(collected: Collected) -> None:
    for item in collected.bundles:
        assert item.canonical == fhir.canonical_json(item.bundle)
        assert json.loads(item.canonical) == item.bundle
        assert item.sha256 == hashlib.sha256(item.canonical).hexdigest()


def test_no_phi_in_quarantine_details_or_reprs(collected: Collected) -> None:
    phi = _phi(collected.sample.out_dir)
    assert len(phi) > 1000
    shown = "\n".join(
        f"{e.detail}\n{e!r}\n{json.dumps(e.metadata(_KEYED), ensure_ascii=False)}"
        for e in collected.entries
    )
    shown += "\n".join(repr(item) for item in collected.bundles)
    assert [value for value in phi if value in shown] == []


def _phi(directory: Path) -> set[str]:
    """Names, national and insurance numbers, phones and diagnosis texts from the export."""
    values: set[str] = set()
    for kind in ("Patient", "Practitioner", "Condition"):
        for raw in (directory / f"{kind}.ndjson").read_bytes().splitlines():
            try:
                resource = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(resource, dict):
                continue
            values.update(n["text"] for n in resource.get("name", []))
            values.update(i["value"] for i in resource.get("identifier", []))
            values.update(t["value"] for t in resource.get("telecom", []))
            if kind == "Condition":
                values.add(resource["code"]["text"])
    return {v for v in values if len(v) >= 6}


# --- the export as a whole ---------------------------------------------------------------------


def test_missing_directory_or_encounter_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        collect(tmp_path / "nowhere", window=WINDOW)
    (tmp_path / "Patient.ndjson").write_text("")
    with pytest.raises(SourceError, match=r"no Encounter\.ndjson"):
        collect(tmp_path, window=WINDOW)


def test_manifest_problems_are_source_errors(tmp_path: Path) -> None:
    _write(tmp_path, _family("e1"))
    manifest = _manifest(tmp_path, taken="2025-07-01T20:00:00+07:00")
    with pytest.raises(SourceError, match="before the window closes"):
        collect(tmp_path, window=WINDOW)
    manifest["transactionTime"] = "2025-07-02T03:00:00+07:00"
    manifest["output"].append({"type": "Procedure", "url": "https://x/Procedure.ndjson"})
    _save(tmp_path, manifest)
    with pytest.raises(SourceError, match="fetch the export again"):
        collect(tmp_path, window=WINDOW)
    manifest["output"][-1] = {"type": "Procedure", "url": "https://x/../../etc/passwd"}
    _save(tmp_path, manifest)
    with pytest.raises(SourceError, match="plain"):
        collect(tmp_path, window=WINDOW)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(SourceError, match="cannot be read"):
        collect(tmp_path, window=WINDOW)


def test_a_truncated_file_is_noticed_against_the_manifest(tmp_path: Path) -> None:
    _write(tmp_path, _family("e1"))
    manifest = _manifest(tmp_path)
    manifest["output"][0]["count"] += 1
    _save(tmp_path, manifest)
    with pytest.raises(SourceError, match="truncated"):
        list(collect(tmp_path, window=WINDOW))


def test_window_factories() -> None:
    assert WINDOW.start == datetime(2025, 7, 1, tzinfo=VN)
    assert WINDOW.end == datetime(2025, 7, 2, tzinfo=VN)
    assert WINDOW.start.utcoffset() == timedelta(hours=7)
    assert datetime(2025, 7, 1, tzinfo=VN) in WINDOW
    assert datetime(2025, 7, 2, tzinfo=VN) not in WINDOW
    assert datetime(2025, 6, 30, 17, 0, tzinfo=ZoneInfo("UTC")) in WINDOW  # 00:00 in Hanoi
    one_am = datetime(2025, 7, 2, 1, 0, tzinfo=VN)
    assert Window.previous_day(one_am) == WINDOW
    assert Window.previous_day(one_am.astimezone(ZoneInfo("UTC"))) == WINDOW
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(start=datetime(2025, 7, 1), end=datetime(2025, 7, 2))
    with pytest.raises(ValueError, match="before its end"):
        Window(start=WINDOW.end, end=WINDOW.start)
    with pytest.raises(ValueError, match="timezone-aware"):
        Window.previous_day(datetime(2025, 7, 2, 1))


# --- hand-made edge cases -------------------------------------------------------------------------


def _family(
    enc_id: str, *, end: str | None = "2025-07-01T10:00:00+07:00", patient: str = "p1"
) -> dict[str, list[Any]]:
    """One good encounter with everything it references (no manifest, so any time works)."""
    subject = {"reference": f"Patient/{patient}"}
    encounter_ref = {"reference": f"Encounter/{enc_id}"}
    period = {"start": "2025-06-30T06:00:00+07:00", **({"end": end} if end else {})}
    return {
        "Encounter": [
            {
                "resourceType": "Encounter",
                "id": enc_id,
                "status": "finished",
                "class": {"system": fhir.SYS_ACT_CODE, "code": "AMB"},
                "subject": subject,
                "period": period,
                "participant": [{"individual": {"reference": "Practitioner/d1"}}],
                "diagnosis": [{"condition": {"reference": f"Condition/c-{enc_id}"}, "rank": 1}],
                "serviceProvider": {"reference": "Organization/o1"},
                "extension": [{"url": fhir.EXT_ACCIDENT, "valueCode": "0"}],
            }
        ],
        "Condition": [
            {
                "resourceType": "Condition",
                "id": f"c-{enc_id}",
                "subject": subject,
                "code": {"coding": [{"system": fhir.SYS_ICD10, "code": "J18.9"}]},
            }
        ],
        "Observation": [
            {
                "resourceType": "Observation",
                "id": f"o-{enc_id}",
                "subject": subject,
                "encounter": encounter_ref,
                "valueString": "Bệnh nhân ổn định.\nRa viện.",
            }
        ],
        "Patient": [{"resourceType": "Patient", "id": patient, "name": [{"text": "Lê Thị Lan"}]}],
        "Organization": [
            {
                "resourceType": "Organization",
                "id": "o1",
                "identifier": [{"system": fhir.SYS_FACILITY, "value": "17001"}],
            }
        ],
        "Practitioner": [{"resourceType": "Practitioner", "id": "d1"}],
    }


def _merge(*families: dict[str, list[Any]]) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for family in families:
        for kind, items in family.items():
            known = merged.setdefault(kind, [])
            known += [i for i in items if i not in known]
    return merged


def _write(directory: Path, files: dict[str, list[Any]], *, ascii_only: bool = False) -> None:
    for kind, items in files.items():
        lines = [
            i if isinstance(i, bytes) else json.dumps(i, ensure_ascii=ascii_only).encode()
            for i in items
        ]
        (directory / f"{kind}.ndjson").write_bytes(b"".join(line + b"\n" for line in lines))


def _manifest(directory: Path, *, taken: str = "2025-07-02T03:00:00+07:00") -> dict[str, Any]:
    output = [
        {"type": p.stem, "url": f"https://his.example/bulk/{p.name}", "count": _count(p)}
        for p in sorted(directory.glob("*.ndjson"))
    ]
    manifest = {
        "transactionTime": taken,
        "request": "https://his.example/$export",
        "output": output,
    }
    _save(directory, manifest)
    return manifest


def _count(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def _save(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))


def _run(directory: Path, **kwargs: Any) -> tuple[list[EncounterBundle], list[QuarantineEntry]]:
    items = list(collect(directory, window=WINDOW, **kwargs))
    bundles = [i for i in items if isinstance(i, EncounterBundle)]
    return bundles, [i for i in items if isinstance(i, QuarantineEntry)]


def _held(entries: Iterable[QuarantineEntry]) -> dict[str | None, QuarantineReason]:
    return {e.encounter_id: e.reason for e in entries if e.scope is QuarantineScope.ENCOUNTER}


def test_a_good_family_becomes_one_bundle(tmp_path: Path) -> None:
    _write(tmp_path, _family("e1"))
    bundles, entries = _run(tmp_path)
    assert entries == []
    (item,) = bundles
    kinds = [e["resource"]["resourceType"] for e in item.bundle["entry"]]
    assert kinds == [
        "Encounter",
        "Patient",
        "Organization",
        "Practitioner",
        "Condition",
        "Observation",
    ]
    assert (item.patient_id, item.facility_code, item.icd10_codes) == ("p1", "17001", ("J18.9",))
    assert "Lê Thị Lan" not in repr(item)


def test_ascii_escaped_crlf_bom_and_escaped_slashes_are_read(tmp_path: Path) -> None:
    family = _family("e1")
    family["Observation"][0]["subject"] = {"reference": "Patient/p1"}
    _write(tmp_path, family, ascii_only=True)
    encounter = tmp_path / "Encounter.ndjson"
    encounter.write_bytes(b"\xef\xbb\xbf" + encounter.read_bytes().replace(b"\n", b"\r\n"))
    observation = tmp_path / "Observation.ndjson"
    observation.write_bytes(observation.read_bytes().replace(b"Encounter/e1", b"Encounter\\/e1"))
    bundles, entries = _run(tmp_path)
    assert entries == []
    (item,) = bundles
    patient = fhir.resolve(item.bundle, fhir.Ref("Patient", "p1"))
    assert patient is not None
    assert patient["name"][0]["text"] == "Lê Thị Lan"
    assert len(fhir.resources_of(item.bundle, "Observation")) == 1


def test_window_edges_and_date_only_end(tmp_path: Path) -> None:
    _write(
        tmp_path,
        _merge(
            _family("in-at-midnight", end="2025-07-01T00:00:00+07:00"),
            _family("out-next-midnight", end="2025-07-02T00:00:00+07:00"),
            _family("in-utc", end="2025-06-30T17:30:00Z"),
            _family("date-only", end="2025-07-01"),
            _family("naive", end="2025-07-01T10:00:00"),
            _family("no-end", end=None),
        ),
    )
    bundles, entries = _run(tmp_path)
    assert [b.encounter_id for b in bundles] == ["date-only", "in-at-midnight", "in-utc"]
    assert _held(entries) == {
        "naive": R.INVALID_DATETIME,
        "no-end": R.MISSING_PERIOD_END,
    }


def test_duplicates_other_patients_and_bad_codes_hold_only_their_encounter(tmp_path: Path) -> None:
    dup_a, dup_b = _family("dup"), _family("dup")
    dup_b["Encounter"][0]["period"]["start"] = "2025-06-30T07:00:00+07:00"
    stranger = _family("stranger")
    stranger["Observation"][0]["subject"] = {"reference": "Patient/p2"}
    accident = _family("accident")
    accident["Encounter"][0]["extension"][0]["valueCode"] = "9"
    procedure = _family("procedure")
    procedure["Procedure"] = [
        {
            "resourceType": "Procedure",
            "id": "pr1",
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/procedure"},
            "code": {"coding": [{"system": fhir.SYS_ICD9CM, "code": "5569"}]},
        }
    ]
    files = _merge(_family("good"), dup_a, dup_b, stranger, accident, procedure)
    files["Patient"].append({"resourceType": "Patient", "id": "p2"})
    _write(tmp_path, files)
    bundles, entries = _run(tmp_path)
    assert [b.encounter_id for b in bundles] == ["good"]
    held = Counter(
        (e.encounter_id, e.reason) for e in entries if e.scope is QuarantineScope.ENCOUNTER
    )
    assert held == Counter(
        {
            ("dup", R.DUPLICATE_ID): 2,
            ("stranger", R.INCONSISTENT_REFERENCE): 1,
            ("accident", R.INVALID_CODE): 1,
            ("procedure", R.INVALID_CODE): 1,
        }
    )


def test_missing_facility_code_and_missing_subject(tmp_path: Path) -> None:
    family = _family("e1")
    family["Organization"][0]["identifier"] = []
    orphan = _family("e2", patient="p2")
    del orphan["Encounter"][0]["subject"]
    del orphan["Patient"], orphan["Organization"]
    _write(tmp_path, _merge(family, orphan))
    bundles, entries = _run(tmp_path)
    assert bundles == []
    assert _held(entries) == {
        "e1": R.INVALID_CODE,
        "e2": R.MALFORMED_RESOURCE,
    }


def test_malformed_lines_with_and_without_a_known_encounter(tmp_path: Path) -> None:
    files = _merge(_family("e1"), _family("e2", end="2025-07-05T10:00:00+07:00"))
    files["Observation"] += [
        b'{"resourceType":"Observation","id":"x1","encounter":{"reference":"Encounter/e1"},"va',
        b'{"resourceType":"Observation","id":"x2","encounter":{"reference":"Encounter/e2"},"va',
        b'{"resourceType":"Observation","id":"x3","status":"fin',
        b'{"resourceType":"Observation","id":"x4","value":NaN,"encounter":{"reference":"#c"}}',
        b'{"resourceType":"Patient","id":"x5","encounter":{"reference":"https://h/Encounter/e1"}}',
    ]
    _write(tmp_path, files)
    bundles, entries = _run(tmp_path)
    assert bundles == []
    assert _held(entries) == {"e1": R.MALFORMED_JSON}
    lines = {
        e.line_number: (e.reason, e.encounter_id)
        for e in entries
        if e.scope is QuarantineScope.LINE
    }
    # x2 belongs to an encounter that is not collected tonight: it waits for that night.
    assert lines == {
        3: (R.MALFORMED_JSON, "e1"),
        5: (R.MALFORMED_JSON, None),
        6: (R.MALFORMED_JSON, None),
        7: (R.MALFORMED_RESOURCE, "e1"),
    }


def test_oversized_lines_are_quarantined_with_their_beginning(tmp_path: Path) -> None:
    family = _family("e1")
    family["Observation"][0]["valueString"] = "Diễn biến ổn định. " * 200
    _write(tmp_path, family)
    bundles, entries = _run(tmp_path, max_line_bytes=2048)
    assert bundles == []
    line = next(e for e in entries if e.scope is QuarantineScope.LINE)
    assert line.reason is R.OVERSIZED_LINE
    assert len(line.raw_line) == 2048
    assert _held(entries) == {"e1": R.OVERSIZED_LINE}


@pytest.mark.parametrize("enc_id", [".", ".."])
def test_encounter_ids_of_dots_are_quarantined_as_invalid_id(tmp_path: Path, enc_id: str) -> None:
    # "." and ".." fit the FHIR id pattern but name a folder: as a dossier folder they broke
    # the export (and as a path segment they would climb out of it).
    _write(tmp_path, _merge(_family("good"), _family(enc_id)))
    bundles, entries = _run(tmp_path)
    assert [b.encounter_id for b in bundles] == ["good"]
    held = [e for e in entries if e.scope is QuarantineScope.ENCOUNTER]
    assert [(e.reason, e.encounter_id) for e in held] == [(R.INVALID_ID, enc_id)]
    assert "only dots" in held[0].detail


def test_unresolved_references_are_named(tmp_path: Path) -> None:
    family = _family("e1")
    family["Encounter"][0]["participant"][0]["individual"]["reference"] = "Practitioner/gone"
    lost = _family("e2", patient="p-missing")
    del lost["Patient"]
    _write(tmp_path, _merge(family, lost))
    bundles, entries = _run(tmp_path)
    assert bundles == []
    assert _held(entries) == {
        "e1": R.UNRESOLVED_REFERENCE,
        "e2": R.UNRESOLVED_REFERENCE,
    }
    assert all("not in the export" in e.detail for e in entries)


# --- memory ------------------------------------------------------------------------------------


def _traced_peak(export: Path, window: Window) -> tuple[int, dict[str, str]]:
    """The tracemalloc peak (bytes) while streaming every item and keeping only its digest."""
    digests: dict[str, str] = {}
    tracemalloc.start()
    try:
        for item in collect(export, window=window):
            if isinstance(item, EncounterBundle):
                digests[item.encounter_id] = item.sha256
        return tracemalloc.get_traced_memory()[1], digests
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_is_bounded_when_everything_is_selected(
    collected: Collected, record_property: Any
) -> None:
    # Worst case: ~76 % of the export finishes in the window, so pass 3 re-reads nearly all of it.
    size = collected.sample.size_bytes
    peak, digests = _traced_peak(collected.sample.out_dir, WINDOW)
    record_property("peak_bytes", peak)
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB export"
    # A second collection of the same export gives the same canonical bytes.
    assert digests == {b.encounter_id: b.sha256 for b in collected.bundles}


@pytest.mark.slow
def test_memory_of_a_5000_encounter_export_stays_far_below_its_size(
    tmp_path: Path, record_property: Any
) -> None:
    # The nightly case: the export is large, the window (the day before) selects a few hundred.
    sample = write_sample_export(tmp_path, encounters=5000, seed=5, day=DAY)
    peak, digests = _traced_peak(tmp_path, Window.for_day(DAY - timedelta(days=1)))
    record_property("peak_bytes", peak)
    record_property("export_bytes", sample.size_bytes)
    assert 200 < len(digests) < 500
    assert sample.size_bytes > 90_000_000
    assert peak < sample.size_bytes / 20, (
        f"peak {peak / 1e6:.1f} MB for a {sample.size_bytes / 1e6:.1f} MB export"
    )
