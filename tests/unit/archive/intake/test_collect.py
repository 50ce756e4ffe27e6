"""Pairing a scan directory with its manifest: symbolic links, names a Mac wrote in NFD, the
manifest's size limit, and records whose retention period ended before intake (with the shipped
TT 33/2025 policy), each with its quarantine reason."""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from archive.core.errors import SourceError
from archive.core.intake_section import IntakeSettings
from archive.intake import collect_scans
from archive.sources import CollectedItem, EncounterBundle, QuarantineEntry
from retention.classifier import PolicyClassifier
from retention.policy import load_policy

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 7, tzinfo=UTC)
HEADER = "file,record_number,patient_id,facility,admitted,discharged,converted_by,retention_class\n"
CLASSIFIER = PolicyClassifier(load_policy(None))


def _retention(bundle: EncounterBundle) -> tuple[str, datetime]:
    decision = CLASSIFIER.decide(bundle)
    return decision.class_id, decision.retain_until


def _scan(path: Path, size: tuple[int, int] = (620, 877)) -> Path:
    Image.new("L", size).save(path, dpi=(75 * size[0] // 620,) * 2)
    return path


def _collect(
    scan_dir: Path,
    rows: str,
    *,
    limits: IntakeSettings | None = None,
    catalogued: frozenset[str] = frozenset(),
) -> list[CollectedItem]:
    manifest = scan_dir.parent / "manifest.csv"
    manifest.write_text(HEADER + rows, encoding="utf-8")
    return list(
        collect_scans(
            scan_dir,
            manifest,
            tz=TZ,
            ocr=False,
            limits=limits or IntakeSettings(),
            retention=_retention,
            now=NOW,
            catalogued=catalogued,
        )
    )


def _reasons(items: list[CollectedItem]) -> list[str]:
    return [i.reason.value if isinstance(i, QuarantineEntry) else "bundle" for i in items]


def _row(name: str, number: str, discharged: str = "2020-03-12", cls: str = "") -> str:
    return f"{name},{number},BN-1,79001,2020-03-01,{discharged},Bình,{cls}\n".replace(
        "2020-03-01", discharged[:4] + "-03-01"
    )


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    (tmp_path / "scans").mkdir()
    return tmp_path / "scans"


def test_a_symbolic_link_is_quarantined_and_never_read(scans: Path, tmp_path: Path) -> None:
    secret = _scan(tmp_path / "outside.tiff")  # past the source roots the run admitted
    os.symlink(secret, scans / "HS-1.tiff")
    os.symlink(secret, scans / "stray.tiff")
    items = _collect(scans, _row("HS-1.tiff", "HS-1"))
    assert _reasons(items) == ["unreadable-scan", "unlisted-scan"]
    listed, stray = items
    assert isinstance(listed, QuarantineEntry)
    assert isinstance(stray, QuarantineEntry)
    assert "symbolic link" in listed.detail
    assert listed.raw_line == stray.raw_line == b""  # the target's bytes are not sealed away


def test_a_file_name_written_nfd_matches_its_nfc_row(scans: Path) -> None:
    nfc = "Hồ-sơ-1.tiff"
    _scan(scans / unicodedata.normalize("NFD", nfc))
    assert _reasons(_collect(scans, _row(nfc, "HS-1"))) == ["bundle"]


def test_two_files_one_name_in_two_unicode_forms_are_not_guessed(scans: Path) -> None:
    nfc = "Hồ-sơ-1.tiff"
    _scan(scans / nfc)
    _scan(scans / unicodedata.normalize("NFD", nfc))
    [entry] = _collect(scans, _row(nfc, "HS-1"))
    assert isinstance(entry, QuarantineEntry)
    assert entry.reason.value == "unreadable-scan"
    assert "Unicode forms" in entry.detail


def test_max_manifest_mib_refuses_the_batch_before_reading_it_whole(scans: Path) -> None:
    rows = _row("HS-1.tiff", "HS-1") + "#" * (1024 * 1024)
    with pytest.raises(SourceError, match="max_manifest_mib"):
        _collect(scans, rows, limits=IntakeSettings(max_manifest_mib=1))


def test_a_limit_of_the_settings_reaches_the_inspection(scans: Path) -> None:
    _scan(scans / "HS-1.tiff", (1240, 1754))  # 2.2 million pixels
    [entry] = _collect(scans, _row("HS-1.tiff", "HS-1"), limits=IntakeSettings(max_pages=1))
    assert _reasons([entry]) == ["bundle"]
    limits = IntakeSettings(max_page_megapixels=2)
    [entry] = _collect(scans, _row("HS-1.tiff", "HS-1"), limits=limits)
    assert isinstance(entry, QuarantineEntry)
    assert (entry.reason.value, entry.line_number) == ("oversized-scan", 2)


def test_a_record_whose_retention_ended_before_intake_is_quarantined(scans: Path) -> None:
    for n in range(1, 5):
        _scan(scans / f"HS-{n}.tiff")
    rows = (
        _row("HS-1.tiff", "HS-1", "1995-03-12")  # ordinary, 10 years: ended 31/12/2005
        + _row("HS-2.tiff", "HS-2", "2020-03-12")  # ordinary: until 2030
        + _row("HS-3.tiff", "HS-3", "1995-03-12", "incident")  # permanent, as the facility chose
        + _row("HS-4.tiff", "HS-4", "2015-12-31")  # ordinary: 31/12/2025, the year-end counts
    )
    items = _collect(scans, rows)
    assert _reasons(items) == ["retention-ended", "bundle", "bundle", "retention-ended"]
    ended = items[0]
    assert isinstance(ended, QuarantineEntry)
    assert ended.line_number == 2
    assert ended.encounter_id == "paper-79001-HS-1"
    assert "class ordinary" in ended.detail
    assert "disposition" in ended.detail
    assert "1995" not in ended.detail  # no date of care in the report
    assert b'"record_kind": "scanned"' in ended.raw_line  # the row is sealed with its digests


def test_a_record_archived_before_its_retention_ended_is_not_quarantined_on_a_rerun(
    scans: Path,
) -> None:
    """The catalog wins: a rerun after the period ended must find the record already archived
    (the run compares its data), not report the archived record as quarantined."""
    for n in (1, 2):
        _scan(scans / f"HS-{n}.tiff")
    rows = _row("HS-1.tiff", "HS-1", "1995-03-12") + _row("HS-2.tiff", "HS-2", "1995-03-12")
    items = _collect(scans, rows, catalogued=frozenset({"paper-79001-HS-1"}))
    assert _reasons(items) == ["bundle", "retention-ended"]
    # A class since dropped from the policy does not make an archived record a bad row either.
    _scan(scans / "HS-3.tiff")
    rows = _row("HS-3.tiff", "HS-3", "2020-03-12", "lâu-dài")
    items = _collect(scans, rows, catalogued=frozenset({"paper-79001-HS-3"}))
    assert _reasons(items) == ["bundle", "unlisted-scan", "unlisted-scan"]  # HS-1, HS-2 files


def test_without_a_classifier_nothing_is_judged_on_retention(scans: Path) -> None:
    _scan(scans / "HS-1.tiff")
    manifest = scans.parent / "manifest.csv"
    manifest.write_text(HEADER + _row("HS-1.tiff", "HS-1", "1995-03-12"), encoding="utf-8")
    items = list(collect_scans(scans, manifest, tz=TZ, ocr=False, limits=IntakeSettings()))
    assert _reasons(items) == ["bundle"]


def test_a_retention_class_the_policy_lacks_is_a_bad_row_not_a_failure_on_every_run(
    scans: Path,
) -> None:
    _scan(scans / "HS-1.tiff")
    [entry] = _collect(scans, _row("HS-1.tiff", "HS-1", "2020-03-12", "lâu-dài"))
    assert isinstance(entry, QuarantineEntry)
    assert (entry.reason.value, entry.line_number) == ("invalid-manifest-row", 2)
    assert entry.detail == "retention_class: not a class of the retention policy"
