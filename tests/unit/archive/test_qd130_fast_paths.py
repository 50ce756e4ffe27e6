"""The QĐ 130 collector's fast paths read what the careful paths read and refuse what they refuse.

Collection hands on a HOSO's bytes and facts, and the render worker builds the page's FHIR model
from those bytes (``page_model``); records, rules, text lengths and the envelope's signature
detection each have a quick path for the common case and fall back to the field-by-field one
for anything else. Each test sets the two side by side, or attacks the shortcut.
"""

from __future__ import annotations

import base64
import pickle
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from archive.core.errors import SourceError
from archive.sources import EncounterBundle, QuarantineReason, QuarantineScope, Window, page_model
from archive.sources.qd130 import collect, load_facility_trust
from archive.sources.qd130.build import OpenFiles, read_range
from archive.sources.qd130.collect import DEFAULT_LIMITS
from archive.sources.qd130.fields import FieldError, moment
from archive.sources.qd130.hardening import XmlRefusedError, parse_inner
from archive.sources.qd130.hoso import _checked_record, _kind_and_content, _record
from archive.sources.qd130.tables import _RULED, SPECS
from infra.sample.qd130 import write_qd130_export
from infra.sample.qd130_signing import CERT_FILE, dev_facility
from tests.support import qd130 as q

R = QuarantineReason
DAY = date(2025, 3, 10)
WINDOW = Window.for_day(DAY, "Asia/Ho_Chi_Minh")
DSIG = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[EncounterBundle]:
    root = tmp_path_factory.mktemp("qd130-fast")
    facility = dev_facility(root / "facility")
    write_qd130_export(
        root / "day", encounters=60, seed=3, day=DAY, tz="Asia/Ho_Chi_Minh", facility=facility
    )
    trust = load_facility_trust(root / "facility" / CERT_FILE)
    items = list(collect(root / "day", window=WINDOW, trust=trust))
    return [i for i in items if isinstance(i, EncounterBundle)]


def _tables(canonical: bytes) -> dict[str, Any]:
    """The embedded HOSO's tables, read here without the collector's code."""
    root = etree.fromstring(canonical)
    hoso = root if root.tag == "HOSO" else root.find("THONGTINHOSO/DANHSACHHOSO/HOSO")
    return {
        f.findtext("LOAIHOSO"): etree.fromstring(base64.b64decode(f.findtext("NOIDUNGFILE")))
        for f in hoso.findall("FILEHOSO")
    }


def _resources(model: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in model["entry"] if e["resource"]["resourceType"] == kind]


def test_the_page_is_built_from_the_embedded_bytes(bundles: list[EncounterBundle]) -> None:
    assert len(bundles) > 30
    assert any(b.canonical.lstrip().startswith(b"<?xml") for b in bundles)  # whole files too
    for bundle in bundles:
        assert bundle.bundle == {}  # collection carries no model: only bytes and facts
        assert len(pickle.dumps(bundle)) < len(bundle.canonical) + 2048
        model = page_model(bundle)
        tables = _tables(bundle.canonical)
        (encounter,) = _resources(model, "Encounter")
        (patient,) = _resources(model, "Patient")
        assert encounter["id"] == bundle.encounter_id == tables["XML1"].findtext("MA_LK")
        assert encounter["period"]["end"] == bundle.discharged_at.isoformat()
        assert patient["name"] == [{"text": tables["XML1"].findtext("HO_TEN")}]
        codes = {c["code"]["coding"][0]["code"] for c in _resources(model, "Condition")}
        assert codes == set(bundle.icd10_codes)
        drugs = tables["XML2"].findall("DSACH_CHI_TIET_THUOC/CHI_TIET_THUOC")
        assert len(_resources(model, "MedicationRequest")) == len(drugs)


def test_a_page_is_refused_for_bytes_that_are_not_the_records(
    bundles: list[EncounterBundle],
) -> None:
    bundle = next(b for b in bundles if b.canonical.startswith(b"<HOSO"))
    other = next(b for b in bundles if b.canonical.startswith(b"<HOSO") and b is not bundle)
    name = _tables(bundle.canonical)["XML1"].findtext("HO_TEN")
    two = q.envelope(bundle.canonical, other.canonical)
    hostile = b'<!DOCTYPE HOSO [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + bundle.canonical
    cases = {
        "another encounter's": other.canonical,
        "not a HOSO": two,
        "DTD": hostile,
        "not well-formed": bundle.canonical[:-20],
    }
    for expected, canonical in cases.items():
        changed = replace(bundle, canonical=canonical)
        with pytest.raises(SourceError, match=expected) as caught:
            page_model(changed)
        assert name not in str(caught.value)


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (XmlRefusedError, FieldError) as e:
        return (type(e).__name__, e.reason, e.detail)


@pytest.mark.parametrize(
    "fields",
    [
        "<STT>1</STT><MA_THUOC> 40.1 </MA_THUOC><TEN_THUOC/>",
        "<STT>1</STT><STT>2</STT>",  # a field twice
        "<STT>1</STT><MA_THUOC>a<b>c</b></MA_THUOC>",  # a field with children
        f'<STT>1</STT><ds:Signature xmlns:ds="{DSIG}"><ds:SignedInfo/></ds:Signature>',
        f'<ds:Signature xmlns:ds="{DSIG}"/><STT>1</STT>',  # a childless signature
        "<STT>1</STT><STT>1</STT>",  # the same field twice, the same value
        "",
    ],
    ids=["flat", "repeated", "children", "signature", "empty-signature", "same-twice", "empty"],
)
def test_a_record_reads_as_the_field_by_field_reader_reads_it(fields: str) -> None:
    node = etree.fromstring(f"<CHI_TIET_THUOC>{fields}</CHI_TIET_THUOC>".encode())
    spec = SPECS["XML2"]
    assert _outcome(_record, node, spec) == _outcome(_checked_record, node, spec)


VALID = {  # a value each rule accepts
    **dict.fromkeys(("NGAY_VAO", "NGAY_VAO_NOI_TRU", "NGAY_RA", "NGAY_YL"), "202503100930"),
    **dict.fromkeys(("NGAY_TH_YL", "NGAY_KQ", "THOI_DIEM_DBLS", "NGAY_TAI_KHAM"), "202503100930"),
    **dict.fromkeys(("SO_LUONG", "DON_GIA", "THANH_TIEN_BV"), "1.5"),
    **{"NGAY_SINH": "199005010000", "NGAY_CT": "20250310", "NGAY_HEN_KL": "20250320"},
    **{"MA_BENH_CHINH": "J18.9", "MA_BENH_KT": "I10;E11", "MA_PTTT_QT": "47.01"},
    **{"MA_CSKCB": "17001", "MA_LOAI_KCB": "03", "KET_QUA_DTRI": "1", "MA_LOAI_RV": "1"},
    **{"GIOI_TINH": "2", "MA_TAI_NAN": "1"},
}


def test_the_first_broken_field_in_order_is_reported_whichever_rules_fail() -> None:
    # "X" breaks every rule; set two fields to it and the first in the record is named,
    # whatever order the quick path met them in.
    assert set(VALID) == _RULED
    tz = WINDOW.tz
    for spec in SPECS.values():
        record = dict.fromkeys(spec.required, "v") | VALID
        assert _outcome(spec.first_problem, record, tz) is None
        assert _outcome(spec.check, record, tz) is None
        ruled = [name for name in record if name in VALID]  # in the record's order
        for i, first in enumerate(ruled):
            for second in ruled[i + 1 :]:
                broken = dict(record, **{first: "X", second: "X"})
                expected = _outcome(spec.first_problem, broken, tz)
                assert expected[2].startswith(f"{spec.kind} {first} ")
                assert _outcome(spec.check, broken, tz) == expected
    xml1 = SPECS["XML1"]
    good = q.summary()
    assert _outcome(xml1.check, good, tz) is None
    late_date = dict(good, MA_BENH_CHINH="E99", NGAY_RA="2025031")  # ICD-10 comes first
    assert "MA_BENH_CHINH" in _outcome(xml1.check, late_date, tz)[2]
    missing = dict(good, MA_BENH_CHINH="E99", NGAY_VAO="")  # a missing field before any rule
    assert _outcome(xml1.check, missing, tz)[2] == "XML1 lacks required NGAY_VAO"


def test_a_cached_date_still_names_its_own_field() -> None:
    tz = WINDOW.tz
    for name in ("XML2 NGAY_YL", "XML3 NGAY_YL", "XML2 NGAY_YL"):
        with pytest.raises(FieldError) as caught:
            moment(name, "202502301200", tz)  # 30 February
        assert caught.value.detail == f"{name} is not a real date and time"
        with pytest.raises(FieldError, match=f"^{name} is not 12 digits"):
            moment(name, "2025022812", tz)
    assert moment("x", "202502281200", tz) is moment("y", "202502281200", tz)


@pytest.mark.parametrize("chars", ["a", "ệ"], ids=["ascii", "three-byte"])
def test_a_text_node_is_measured_in_characters_whatever_the_documents_bytes(chars: str) -> None:
    limit = 50
    fits = f"<T><F>{chars * limit}</F></T>".encode()
    over = f"<T><F>{chars * (limit + 1)}</F></T>".encode()
    assert parse_inner(fits, "t", max_depth=4, max_text=limit).findtext("F") == chars * limit
    with pytest.raises(XmlRefusedError) as caught:
        parse_inner(over, "t", max_depth=4, max_text=limit)
    assert caught.value.reason is R.OVERSIZED_XML


def test_a_short_document_is_still_refused_when_too_deep() -> None:
    deep = b"<T>" + b"<a>" * 5 + b"</a>" * 5 + b"</T>"
    assert len(deep) <= 1000  # within max_text: only the depth check runs
    with pytest.raises(XmlRefusedError, match="nests deeper than 4") as caught:
        parse_inner(deep, "t", max_depth=4, max_text=1000)
    assert caught.value.reason is R.HOSTILE_XML
    assert parse_inner(deep, "t", max_depth=6, max_text=1000).tag == "T"


@pytest.mark.parametrize(
    "children",
    [
        "<LOAIHOSO>XML1</LOAIHOSO><NOIDUNGFILE>QQ==</NOIDUNGFILE>",
        "<NOIDUNGFILE>QQ==</NOIDUNGFILE><LOAIHOSO> XML2 </LOAIHOSO>",
        "<LOAIHOSO>XML1</LOAIHOSO><LOAIHOSO>XML2</LOAIHOSO><NOIDUNGFILE/><NOIDUNGFILE>B</NOIDUNGFILE>",
        "<LOAIHOSO/>",
        "<NOIDUNGFILE>QQ==</NOIDUNGFILE>",
        "<X><LOAIHOSO>XML1</LOAIHOSO></X>",  # not a child of FILEHOSO
        "<LOAIHOSO>XM<b/>L1</LOAIHOSO><NOIDUNGFILE>Q<b/>Q==</NOIDUNGFILE>",
        "",
    ],
)
def test_a_filehoso_reads_as_findtext_reads_it(children: str) -> None:
    item = etree.fromstring(f"<FILEHOSO>{children}</FILEHOSO>".encode())
    assert _kind_and_content(item) == (item.findtext("LOAIHOSO"), item.findtext("NOIDUNGFILE"))


@pytest.mark.parametrize(
    ("holder", "reason"),
    [
        (b"<CHUKYDONVI>MIIBIjAN</CHUKYDONVI>", R.FACILITY_SIGNATURE_INVALID),  # text only
        (b"<CHUKYDONVI><x/>MIIB</CHUKYDONVI>", R.FACILITY_SIGNATURE_INVALID),
        (b"<CHUKYDONVI>\n  \n</CHUKYDONVI>", None),  # blank: no signature, archived
    ],
    ids=["text", "element", "blank"],
)
def test_whatever_chukydonvi_holds_is_checked(
    tmp_path: Path, holder: bytes, reason: QuarantineReason | None
) -> None:
    data = q.envelope(q.hoso({"XML1": q.xml1()})).replace(b"<CHUKYDONVI></CHUKYDONVI>", holder)
    (tmp_path / "day.xml").write_bytes(data)
    (item,) = collect(tmp_path, window=Window.for_day(date(2025, 3, 10)))
    if reason is None:
        assert isinstance(item, EncounterBundle)
        assert item.facility_signature is not None
        assert item.facility_signature.status == "absent"
    else:
        assert not isinstance(item, EncounterBundle)
        assert (item.scope, item.reason) == (QuarantineScope.FILE, reason)


def test_read_handles_stay_open_from_one_episode_to_the_next_but_never_too_many(
    tmp_path: Path,
) -> None:
    paths = []
    for n in range(3):
        paths.append(tmp_path / f"{n}.xml")
        paths[-1].write_bytes(f"<HOSO>{n}</HOSO>".encode())
    files = OpenFiles(most=2)
    first = files.get(paths[0])
    assert files.get(paths[0]) is first  # kept open
    second = files.get(paths[1])
    third = files.get(paths[2])  # the oldest is closed to make room
    assert [h.closed for h in (first, second, third)] == [True, False, False]
    assert read_range(files.get(paths[0]), 0, 7, DEFAULT_LIMITS) == b"<HOSO>0</HOSO>"
    assert [h.closed for h in (second, third)] == [True, False]  # the next oldest went
    files.close()
    assert [h.closed for h in (second, third)] == [True, True]


def _xml2(drug: str) -> bytes:
    return (
        "<CHITIEU_CHITIET_THUOC><DSACH_CHI_TIET_THUOC><CHI_TIET_THUOC><MA_LK>LK0001</MA_LK>"
        f"<STT>1</STT><MA_THUOC>40.1</MA_THUOC><TEN_THUOC>{drug}</TEN_THUOC><SO_LUONG>1</SO_LUONG>"
        "<NGAY_YL>202503100800</NGAY_YL></CHI_TIET_THUOC></DSACH_CHI_TIET_THUOC>"
        "</CHITIEU_CHITIET_THUOC>"
    ).encode()


@pytest.mark.parametrize(
    ("tables", "detail"),
    [
        (
            {"XML1": q.xml1(), "XML2": _xml2("Para\u202e")},
            "HOSO 1: XML2[0].TEN_THUOC contains the bidirectional control U+202E",
        ),
        (
            {"XML1": q.xml1(CHAN_DOAN_RV="Vi\x85m"), "XML2": _xml2("Para\u202e")},
            "HOSO 1: XML1[0].CHAN_DOAN_RV contains the control character U+0085",
        ),
        ({"XML1": q.xml1(), "XML2": _xml2("Paracetamol")}, None),
    ],
    ids=["second-table", "first-table-first", "clean"],
)
def test_a_control_character_is_found_in_its_table_after_one_look_at_all(
    tmp_path: Path, tables: dict[str, bytes], detail: str | None
) -> None:
    # The details as the table-by-table search wrote them before the one-look pre-check.
    (tmp_path / "day.xml").write_bytes(q.envelope(q.hoso(tables)))
    (item,) = collect(tmp_path, window=Window.for_day(date(2025, 3, 10)))
    if detail is None:
        assert isinstance(item, EncounterBundle)
    else:
        assert not isinstance(item, EncounterBundle)
        assert (item.reason, item.detail) == (R.CONTROL_CHARACTERS, detail)
