"""The sections of the discharge summary, read from an encounter Bundle.

Order and wording follow the Vietnamese "Tóm tắt hồ sơ bệnh án" with English beside each label.
Codes are printed with their meaning from :mod:`archive.render.codes`; an unknown code is printed
as it is, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archive.core.errors import RenderError
from archive.render.codes import (
    CLINICAL_COURSE,
    DIAGNOSIS_USE,
    DISPOSITION,
    ENCOUNTER_CLASS,
    EXT_ACCIDENT,
    EXT_RESULT,
    GENDER,
    ICD10,
    LOINC,
    SYSTEM_DEPARTMENT,
    SYSTEM_FACILITY,
    SYSTEM_HSBA,
    SYSTEM_MA_LK,
    TREATMENT_RESULT,
    USE_ORDER,
)
from archive.render.model import (
    DASH,
    Field,
    Fields,
    Resolver,
    Section,
    Summary,
    Table,
    Text,
    clean,
    code_and_name,
    coding,
    day,
    extension,
    get,
    identifier,
    items,
    or_dash,
    paragraphs,
    quantity,
    when,
)


def build_summary(bundle: Mapping[str, Any]) -> Summary:
    """Read the Bundle into the sections of the discharge summary, in the order they print."""
    if not isinstance(bundle, Mapping):
        raise RenderError("the input is not a FHIR Bundle (expected a JSON object)")
    refs = Resolver(bundle)
    encounter = refs.first("Encounter")
    if not encounter:
        raise RenderError("the Bundle has no Encounter resource; quarantine it with this reason")
    patient = refs.follow(encounter.get("subject"), "Patient")
    facility = refs.follow(encounter.get("serviceProvider"), "Organization")
    observations = [o for o in refs.of_type("Observation") if not _is_course(o)]
    return Summary(
        encounter_id=or_dash(encounter.get("id")),
        record_number=identifier(encounter, SYSTEM_HSBA),
        facility_code=identifier(facility, SYSTEM_FACILITY),
        facility_name=or_dash(facility.get("name")),
        sections=(
            _patient(patient),
            _stay(encounter),
            _diagnoses(refs, encounter),
            _procedures(refs),
            _medications(refs),
            _results(observations),
            _course([o for o in refs.of_type("Observation") if _is_course(o)]),
            _outcome(encounter),
            _physicians(refs, encounter),
        ),
    )


def _patient(patient: Mapping[str, Any]) -> Section:
    return Section(
        "I. HÀNH CHÍNH / PATIENT",
        (
            Fields(
                (
                    Field("Họ và tên / Full name", _person_name(patient)),
                    Field("Giới tính / Sex", _lookup(GENDER, patient.get("gender"))),
                    Field("Ngày sinh / Date of birth", day(patient.get("birthDate"))),
                    Field("Mã người bệnh / Patient ID", identifier(patient, "urn:vn:moh:patient")),
                    Field("Số CCCD / Citizen ID", identifier(patient, "urn:vn:cccd")),
                    Field("Số thẻ BHYT / Health insurance no.", identifier(patient, "urn:vn:bhyt")),
                    Field(
                        "Địa chỉ / Address", or_dash(get(patient, "address", 0, "text")), wide=True
                    ),
                    Field("Ngày tử vong / Date of death", when(patient.get("deceasedDateTime"))),
                )
            ),
        ),
    )


def _stay(encounter: Mapping[str, Any]) -> Section:
    department = code_and_name(get(encounter, "serviceType"), SYSTEM_DEPARTMENT)
    default = _labelled(*department)
    wards = [or_dash(get(loc, "location", "display")) for loc in items(encounter, "location")]
    return Section(
        "II. VÀO VIỆN — RA VIỆN / ADMISSION AND DISCHARGE",
        (
            Fields(
                (
                    Field(
                        "Hình thức / Encounter type",
                        _lookup(ENCOUNTER_CLASS, get(encounter, "class", "code")),
                    ),
                    Field("Mã liên kết (MA_LK) / Link code", identifier(encounter, SYSTEM_MA_LK)),
                    Field("Vào viện / Admitted", when(get(encounter, "period", "start"))),
                    Field("Ra viện / Discharged", when(get(encounter, "period", "end"))),
                    Field("Khoa vào viện / Admitting department", wards[0] if wards else default),
                    Field("Khoa ra viện / Discharging department", wards[-1] if wards else default),
                    Field("Mã tai nạn / Accident code", extension(encounter, EXT_ACCIDENT)),
                )
            ),
        ),
    )


def _diagnoses(refs: Resolver, encounter: Mapping[str, Any]) -> Section:
    ranked: list[tuple[int, int, int, tuple[str, ...]]] = []
    listed: set[int] = set()
    for n, dx in enumerate(items(encounter, "diagnosis")):
        condition = refs.follow(dx.get("condition"))
        if condition:
            listed.add(id(condition))
        use = clean(get(coding(dx.get("use")), "code"))
        rank = dx.get("rank") if isinstance(dx.get("rank"), int) else 99
        kind = DIAGNOSIS_USE.get(use, use or DASH)
        kind += "" if rank == 99 else (" (chính)" if rank == 1 else " (kèm theo)")
        ranked.append((USE_ORDER.get(use, 3), rank, n, (kind, *_icd(condition))))
    for n, condition in enumerate(refs.of_type("Condition")):
        if id(condition) not in listed:  # a Condition the Encounter does not list still prints
            ranked.append((4, 99, n, (DASH, *_icd(condition))))
    rows = tuple(row for *_, row in sorted(ranked))
    headers = ("Loại / Type", "Mã ICD-10 / Code", "Chẩn đoán / Diagnosis")
    return Section("III. CHẨN ĐOÁN / DIAGNOSES", (_table(headers, (0.22, 0.16, 0.62), rows),))


def _procedures(refs: Resolver) -> Section:
    rows = tuple(
        (
            when(p.get("performedDateTime") or get(p, "performedPeriod", "start")),
            *code_and_name(p.get("code")),
        )
        for p in refs.of_type("Procedure")
    )
    headers = ("Ngày / Date", "Mã ICD-9-CM / Code", "Thủ thuật, phẫu thuật / Procedure")
    section = "IV. THỦ THUẬT, PHẪU THUẬT / PROCEDURES"
    return Section(section, (_table(headers, (0.2, 0.16, 0.64), rows),))


def _medications(refs: Resolver) -> Section:
    rows = tuple(
        (str(n), _medication_name(m), or_dash(get(m, "dosageInstruction", 0, "text")))
        for n, m in enumerate(refs.of_type("MedicationRequest"), start=1)
    )
    headers = ("STT / No.", "Thuốc / Medication", "Cách dùng / Dosage")
    section = "V. THUỐC ĐIỀU TRỊ / MEDICATIONS"
    return Section(section, (_table(headers, (0.08, 0.42, 0.5), rows),))


def _results(observations: list[Mapping[str, Any]]) -> Section:
    vitals = [o for o in observations if _category(o) == "vital-signs"]
    labs = [o for o in observations if _category(o) != "vital-signs"]
    headers = (
        "Thời gian / Time",
        "Mã LOINC",
        "Tên / Test",
        "Kết quả / Result",
        "Đơn vị / Unit",
        "Tham chiếu / Range",
    )
    widths = (0.19, 0.11, 0.3, 0.14, 0.12, 0.14)
    blocks = tuple(
        Table(headers, widths, tuple(_observation_row(o) for o in group), caption=caption)
        for caption, group in (
            ("Dấu hiệu sinh tồn / Vital signs", vitals),
            ("Xét nghiệm / Laboratory", labs),
        )
        if group
    )
    section = "VI. KẾT QUẢ CẬN LÂM SÀNG / PARACLINICAL RESULTS"
    return Section(section, blocks or (Text((DASH,)),))


def _course(notes: list[Mapping[str, Any]]) -> Section:
    texts: list[str] = []
    for note in notes:
        body = list(paragraphs(note.get("valueString")))
        if len(notes) > 1 and body:
            body[0] = f"{when(note.get('effectiveDateTime'))}: {body[0]}"
        texts += body
    return Section("VII. DIỄN BIẾN LÂM SÀNG / CLINICAL COURSE", (Text(tuple(texts) or (DASH,)),))


def _outcome(encounter: Mapping[str, Any]) -> Section:
    result = extension(encounter, EXT_RESULT)
    disposition = get(coding(get(encounter, "hospitalization", "dischargeDisposition")), "code")
    return Section(
        "VIII. KẾT QUẢ ĐIỀU TRỊ / TREATMENT OUTCOME",
        (
            Fields(
                (
                    Field(
                        "Kết quả điều trị / Treatment result",
                        f"{result} — {TREATMENT_RESULT[result]}"
                        if result in TREATMENT_RESULT
                        else result,
                    ),
                    Field(
                        "Tình trạng ra viện / Discharge disposition",
                        _lookup(DISPOSITION, disposition),
                    ),
                )
            ),
        ),
    )


def _physicians(refs: Resolver, encounter: Mapping[str, Any]) -> Section:
    fields = []
    for participant in items(encounter, "participant"):
        role = clean(get(coding(get(participant, "type", 0)), "code"))
        label = "Bác sĩ điều trị / Attending physician" if role in ("", "ATND") else role
        fields.append(Field(label, _person_name(refs.follow(participant.get("individual")))))
    if not fields:
        fields.append(Field("Bác sĩ điều trị / Attending physician", DASH))
    return Section("IX. BÁC SĨ ĐIỀU TRỊ / TREATING PHYSICIAN", (Fields(tuple(fields)),))


def _table(
    headers: tuple[str, ...], widths: tuple[float, ...], rows: tuple[tuple[str, ...], ...]
) -> Table:
    return Table(headers, widths, rows or ((DASH,) * len(headers),))


def _observation_row(obs: Mapping[str, Any]) -> tuple[str, ...]:
    code, name = code_and_name(obs.get("code"), LOINC)
    value = quantity(obs)
    flag = clean(get(coding(get(obs, "interpretation", 0)), "code"))
    unit = get(obs, "valueQuantity", "unit") or get(obs, "valueQuantity", "code")
    return (
        when(obs.get("effectiveDateTime")),
        code,
        name,
        f"{value} ({flag})" if flag and value != DASH else value,
        or_dash(unit),
        _range(get(obs, "referenceRange", 0)),
    )


def _range(ref: Any) -> str:
    if clean(get(ref, "text")):
        return clean(get(ref, "text"))
    low, high = (get(ref, end, "value") for end in ("low", "high"))
    if low is not None and high is not None:
        return f"{_value(low)} - {_value(high)}"
    if low is not None:
        return f"≥ {_value(low)}"
    return f"≤ {_value(high)}" if high is not None else DASH


def _value(value: Any) -> str:
    return quantity({"valueQuantity": {"value": value}})


def _category(obs: Mapping[str, Any]) -> str:
    for category in items(obs, "category"):
        for c in items(category, "coding"):
            if c.get("code") == "vital-signs":
                return "vital-signs"
    return "other"


def _is_course(obs: Mapping[str, Any]) -> bool:
    return any(c.get("code") == CLINICAL_COURSE for c in items(obs, "code", "coding"))


def _medication_name(request: Mapping[str, Any]) -> str:
    concept = request.get("medicationCodeableConcept")
    name = clean(get(concept, "text")) or clean(get(coding(concept), "display"))
    return name or or_dash(get(request, "medicationReference", "display"))


def _person_name(resource: Mapping[str, Any]) -> str:
    name = get(resource, "name", 0)
    text = clean(get(name, "text"))
    if not text:  # Vietnamese order: family name first
        given = get(name, "given")
        parts = [get(name, "family"), *(given if isinstance(given, list) else [])]
        text = clean(" ".join(clean(p) for p in parts if isinstance(p, str)))
    return text or DASH


def _lookup(table: Mapping[str, str], code: Any) -> str:
    key = clean(code)
    return table.get(key, key or DASH)


def _labelled(code: str, name: str) -> str:
    return name if code == DASH else f"{name} ({code})"


def _icd(condition: Mapping[str, Any]) -> tuple[str, str]:
    return code_and_name(condition.get("code"), ICD10)
