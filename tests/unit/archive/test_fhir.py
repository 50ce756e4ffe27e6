"""FHIR helpers and value checks: references, ids, codes, text, dates and the canonical bytes."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from archive.sources import Ref, fhir, validation

VN = ZoneInfo("Asia/Ho_Chi_Minh")


# --- references --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Patient/123", Ref("Patient", "123")),
        ("Patient/x/_history/2", Ref("Patient", "x")),
        ("https://his.example/fhir/Patient/7", Ref("Patient", "7")),
        ("https://his.example/fhir/Patient/7/_history/3", Ref("Patient", "7")),
        # Lenient on purpose: the bad id is reported on the resource that carries it.
        ("Patient/a/b", Ref("Patient", "a/b")),
        ("Encounter/../x", Ref("Encounter", "../x")),
        ("urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", None),
        ("#contained-1", None),
        ("patient/1", None),
        ("Patient/", None),
        ("Patient", None),
        (42, None),
        (None, None),
    ],
)
def test_parse_reference(value: object, expected: Ref | None) -> None:
    assert fhir.parse_reference(value) == expected


def test_reference_and_iter_references_are_total() -> None:
    resource = {
        "subject": {"reference": "Patient/p1"},
        "performer": [{"actor": {"reference": "Practitioner/d1"}}, {"display": "no ref"}],
        "encounter": "not an object",
        "note": [{"text": "reference"}],
    }
    assert fhir.reference(resource, "subject") == Ref("Patient", "p1")
    assert fhir.reference(resource, "encounter") is None
    assert fhir.reference("not a resource", "subject") is None
    assert set(fhir.iter_references(resource)) == {Ref("Patient", "p1"), Ref("Practitioner", "d1")}
    assert list(fhir.iter_references(5)) == []
    assert fhir.parse_reference("Patient/" + "x" * 300) == Ref("Patient", "x" * 300)


def test_loads_collects_the_same_references_as_a_walk() -> None:
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1"},
        "hasMember": [{"reference": "Observation/o2"}, {"reference": "#c"}],
        "contained": [{"resourceType": "Observation", "subject": {"reference": "Patient/p9"}}],
    }
    value, refs = fhir.loads(json.dumps(resource))
    assert value == resource
    assert sorted(refs) == sorted(fhir.iter_references(resource))


@pytest.mark.parametrize("text", ['{"value": NaN}', '{"value": Infinity}', "{"])
def test_loads_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        fhir.loads(text)


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "enc-001", "1.2.3", "A" * 64, "0b3c9f1e-7d2a-4c1b-9e3f"])
def test_valid_ids(value: str) -> None:
    assert validation.is_valid_id(value)
    assert validation.id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("../x", "path separator"),
        ("a/b", "path separator"),
        ("..\\x", "path separator"),
        (".", "only dots"),
        ("..", "only dots"),
        ("...", "only dots"),
        ("enc-\u0430bc", "look-alike"),  # Cyrillic a
        ("enc\u200b1", "invisible"),
        ("enc\ufeff1", "invisible"),
        ("enc\x071", "control"),
        ("enc 1", "not allowed"),
        ("", "empty"),
        ("a" * 65, "longer than 64"),
        (12, "not a string"),
        (None, "not a string"),
    ],
)
def test_invalid_ids_say_why_without_echoing_the_id(value: object, phrase: str) -> None:
    problem = validation.id_problem(value)
    assert problem is not None
    assert phrase in problem
    if isinstance(value, str) and value:
        assert value not in problem
    assert not validation.is_valid_id(value)


# --- codes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["J18.9", "F32.1", "F03", "V43.5", "A09", "S72.00", "U07.1", "U82.0", "Z94.0", "C97", "D48.9"],
)
def test_icd10_accepts_who_codes(code: str) -> None:
    assert validation.is_icd10(code)


@pytest.mark.parametrize(
    "code",
    [
        "J18.9.1",
        "XYZ",
        "I5O.9",  # letter O for zero
        "j18.9",
        "J189",  # dotless
        "J18.",
        "J18.999",
        "J18.X",
        "18.9",
        "E99",  # beyond chapter IV (E00-E90)
        "D49",  # between neoplasms (D48) and blood (D50)
        "K95",
        "U99.9",  # U50-U81, U86-U99 are not assigned by WHO
        "U50",
        "",
        None,
        17,
    ],
)
def test_icd10_refuses_malformed_and_unassigned_codes(code: object) -> None:
    assert not validation.is_icd10(code)


def test_icd10_chapter() -> None:
    assert validation.icd10_chapter("F32.1") == "V"
    assert validation.icd10_chapter("V43.5") == "XX"
    assert validation.icd10_chapter("T98.3") == "XIX"
    assert validation.icd10_chapter("U07.1") == "XXII"
    assert validation.icd10_chapter("E99") is None


@pytest.mark.parametrize("code", ["47.01", "74.1", "55.69", "86.82", "86"])
def test_icd9cm_procedure_accepts(code: str) -> None:
    assert validation.is_icd9cm_procedure(code)


@pytest.mark.parametrize("code", ["5569", "4.01", "47.012", "J18.9", "", None])
def test_icd9cm_procedure_refuses(code: object) -> None:
    assert not validation.is_icd9cm_procedure(code)


def test_codings_identifier_extension_helpers() -> None:
    resource = {
        "identifier": [{"system": "x", "value": "1"}, {"system": fhir.SYS_HSBA, "value": "25K03"}],
        "extension": [{"url": fhir.EXT_ACCIDENT, "valueCode": "1"}, "junk"],
        "code": {
            "coding": [
                {"system": "other", "code": "a"},
                {"system": fhir.SYS_ICD10, "code": "F32.1"},
            ]
        },
    }
    assert fhir.identifier(resource, fhir.SYS_HSBA) == "25K03"
    assert fhir.identifier(resource, fhir.SYS_CCCD) is None
    assert fhir.extension_code(resource, fhir.EXT_ACCIDENT) == "1"
    assert fhir.extension_code(resource, fhir.EXT_TREATMENT_RESULT) is None
    assert fhir.code(resource["code"], fhir.SYS_ICD10) == "F32.1"
    assert fhir.code("junk", fhir.SYS_ICD10) is None


# --- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Nguy\x07ễn", "control character U+0007"),
        ("\x1b[2J", "control character U+001B"),
        ("a\x00b", "control character U+0000"),
        ("a\x85b", "control character U+0085"),  # C1
        ("\u202eabc", "bidirectional control U+202E"),
        ("x\ud800y", "unpaired surrogate U+D800"),
    ],
)
def test_text_problem_names_the_path_and_code_point(text: str, phrase: str) -> None:
    resource = {"resourceType": "Patient", "name": [{"text": "ok"}, {"text": text}]}
    problem = validation.text_problem(resource, root="Patient")
    assert problem == f"Patient.name[1].text contains the {phrase}"
    line = json.dumps(resource, ensure_ascii=False)
    assert validation.may_have_bad_text(line)
    assert validation.may_have_bad_text(json.dumps(resource))  # ASCII-escaped exports too


@pytest.mark.parametrize(
    "text",
    ["Nguyễn Văn An", "dòng 1\ndòng 2\r\n\tthụt lề", "zero\u200bwidth", "emoji \U0001f600", ""],
)
def test_text_problem_allows_ordinary_text(text: str) -> None:
    resource = {"resourceType": "Observation", "valueString": text}
    assert validation.text_problem(resource) is None


def test_control_characters_in_keys_are_found() -> None:
    assert validation.text_problem({"a": {"b\x01": 1}}) is not None


# --- dates -------------------------------------------------------------------------------------


def test_parse_datetime() -> None:
    parse = fhir.parse_datetime
    plus7 = timezone(timedelta(hours=7))
    assert parse("2025-07-01T10:00:00+07:00", date_tz=VN) == datetime(2025, 7, 1, 10, tzinfo=plus7)
    assert parse("2025-07-01T03:00:00Z", date_tz=VN) == datetime(2025, 7, 1, 3, tzinfo=UTC)
    assert parse("2025-07-01T10:00:00.250+07:00", date_tz=VN) is not None
    assert parse("2025-07-01", date_tz=VN) == datetime(2025, 7, 1, tzinfo=VN)
    for bad in ("2025-07-01T10:00:00", "2025-07", "2025", "01/07/2025", "2025-13-01", "", 5):
        assert parse(bad, date_tz=VN) is None, bad


# --- bundles and canonical bytes ------------------------------------------------------------------


def _resources() -> list[dict[str, object]]:
    return [
        {"resourceType": "Observation", "id": "o2", "valueString": "b"},
        {"resourceType": "Condition", "id": "c1"},
        {"resourceType": "Patient", "id": "p1", "name": [{"text": "Nguyễn"}]},
        {"resourceType": "Observation", "id": "o1"},
        {"resourceType": "Encounter", "id": "e1", "status": "finished"},
        {"resourceType": "Practitioner", "id": "d1"},
        {"resourceType": "Organization", "id": "org"},
    ]


def test_collection_bundle_order_and_full_urls() -> None:
    bundle = fhir.collection_bundle("e1", _resources())
    assert (bundle["resourceType"], bundle["type"], bundle["id"]) == ("Bundle", "collection", "e1")
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert urls == [
        "Encounter/e1",
        "Patient/p1",
        "Organization/org",
        "Practitioner/d1",
        "Condition/c1",
        "Observation/o1",
        "Observation/o2",
    ]
    assert fhir.resolve(bundle, Ref("Patient", "p1")) == _resources()[2]
    assert fhir.resolve(bundle, Ref("Patient", "p9")) is None
    assert [r["id"] for r in fhir.resources_of(bundle, "Observation")] == ["o1", "o2"]


def test_canonical_json_is_sorted_compact_nfc_utf8() -> None:
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hằng")
    data = {"z": 1, "a": {"y": [1.5, True, None], "b": nfd}}
    out = fhir.canonical_json(data)
    expected = '{"a":{"b":"Nguyễn Thị Hằng","y":[1.5,true,null]},"z":1}'
    assert out == unicodedata.normalize("NFC", expected).encode("utf-8")
    # Insertion order and normalisation form of the input do not matter.
    same = {"a": {"b": unicodedata.normalize("NFC", nfd), "y": [1.5, True, None]}, "z": 1}
    assert fhir.canonical_json(same) == out
    assert fhir.canonical_json(json.loads(out)) == out


def test_canonical_pair_copies_only_when_something_is_not_nfc() -> None:
    already = {"name": "Lê Thị Lan"}
    value, data = fhir.canonical_pair(already)
    assert value is already
    decomposed = {"name": unicodedata.normalize("NFD", "Lê Thị Lan")}
    value, data = fhir.canonical_pair(decomposed)
    assert value == already
    assert data == fhir.canonical_json(already)
    # An escaped newline followed by a combining mark is NFC as a string, not as text.
    tricky = {"note": "a\n\u0301b"}
    assert fhir.canonical_pair(tricky)[0] == tricky


def test_canonical_json_refuses_nan_and_lone_surrogates() -> None:
    with pytest.raises(ValueError):
        fhir.canonical_json({"v": float("nan")})
    with pytest.raises(ValueError):
        fhir.canonical_json({"v": "\ud800"})
