"""An XML signature inside a HOSO's table (in its Base64 content, not the facility's
``CHUKYDONVI``) is recorded "unverified", never "absent": a signature is there and no one here
checked it. The record is archived (its data passed every check), the signature kept in the
original XML; a checked ``CHUKYDONVI`` keeps its status and notes the inner one."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from archive.sources import EncounterBundle, Window
from archive.sources.model import FacilitySignature
from archive.sources.qd130 import FacilityTrust, collect
from infra.sample.qd130_signing import DevFacility, dev_facility, sign_file
from tests.support import qd130 as q

WINDOW = Window.for_day(date(2025, 3, 10))


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> DevFacility:
    return dev_facility(tmp_path_factory.mktemp("facility"))


@pytest.fixture(scope="module")
def signature(facility: DevFacility) -> bytes:
    """A real ds:Signature element (a HIS signing one table would make one like it)."""
    signed = sign_file(q.envelope(q.hoso({"XML1": q.xml1(MA_LK="LK0900")})), facility)
    found = re.search(rb"<ds:Signature.*</ds:Signature>", signed, re.S)
    assert found is not None
    return found.group(0)


def _collected(tmp_path: Path, data: bytes) -> FacilitySignature:
    (tmp_path / "day.xml").write_bytes(data)
    items = list(collect(tmp_path, window=WINDOW))
    assert [type(i) for i in items] == [EncounterBundle], items
    bundle = items[0]
    assert isinstance(bundle, EncounterBundle)
    assert bundle.facility_signature is not None
    return bundle.facility_signature


def test_a_signature_inside_a_kept_table_is_unverified_not_absent(
    tmp_path: Path, signature: bytes
) -> None:
    birth = (
        b"<CHI_TIEU_GIAYCHUNGSINH><MA_LK>LK0001</MA_LK>" + signature + b"</CHI_TIEU_GIAYCHUNGSINH>"
    )
    result = _collected(tmp_path, q.envelope(q.hoso({"XML1": q.xml1(), "XML9": birth})))
    assert result.status == "unverified"
    assert "inside XML9" in result.detail
    assert result.signer_sha256 is None  # nothing was checked, so no signer is claimed


def test_a_signature_inside_the_encounter_summary_is_not_a_field(
    tmp_path: Path, signature: bytes
) -> None:
    summary = q.xml1().replace(b"</TONG_HOP>", signature + b"</TONG_HOP>")
    result = _collected(tmp_path, q.envelope(q.hoso({"XML1": summary})))
    assert (result.status, "inside XML1" in result.detail) == ("unverified", True)


def test_a_valid_chukydonvi_stays_valid_and_notes_the_inner_signature(
    tmp_path: Path, signature: bytes, facility: DevFacility
) -> None:
    summary = q.xml1().replace(b"</TONG_HOP>", signature + b"</TONG_HOP>")
    signed = sign_file(q.envelope(q.hoso({"XML1": summary})), facility)
    (tmp_path / "day.xml").write_bytes(signed)

    items = list(collect(tmp_path, window=WINDOW, trust=FacilityTrust.of([facility.cert])))
    bundle = items[0]
    assert isinstance(bundle, EncounterBundle)
    assert bundle.facility_signature is not None
    assert bundle.facility_signature.status == "valid"
    assert bundle.facility_signature.signer_sha256 == facility.sha256
    assert "inside XML1" in bundle.facility_signature.detail


def test_a_file_without_any_signature_is_still_absent(tmp_path: Path) -> None:
    result = _collected(tmp_path, q.envelope(q.hoso({"XML1": q.xml1()})))
    assert (result.status, result.detail) == ("absent", "")
