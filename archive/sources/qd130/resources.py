"""The FHIR R4 resources the discharge summary is rendered from, built from a HOSO's tables.

Same systems and extensions as the Bulk Data source (:mod:`archive.sources.fhir`), so the one
renderer prints both. Only what the page needs; the tables themselves are kept in the embedded
original. Empty values are left out rather than written as ``null``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, tzinfo
from typing import Any, Final

from archive.sources import fhir
from archive.sources.qd130 import fields as f
from archive.sources.qd130.hoso import Hoso
from archive.sources.qd130.tables import Record

SYS_SERVICE: Final = "urn:vn:moh:service"  # MA_DICH_VU, MA_CHI_SO
SYS_DRUG: Final = "urn:vn:moh:drug"  # MA_THUOC
INPATIENT: Final = frozenset({"03", "04", "09"})  # MA_LOAI_KCB: stays with a bed
EMERGENCY: Final = "2"  # MA_DOITUONG_KCB
DEATHS: Final = frozenset({"5", "8"})  # KET_QUA_DTRI
GENDERS: Final = {"1": "male", "2": "female", "3": "other"}
DISPOSITIONS: Final = {  # MA_LOAI_RV onto HL7 discharge-disposition
    "1": "home",
    "2": "other-hcf",
    "3": "aadvice",  # absconded
    "4": "aadvice",  # left on the patient's request
    "5": "other-hcf",  # referred at the patient's request
}


def encounter_class(s: Record) -> str:
    if s.get("MA_DOITUONG_KCB") == EMERGENCY:
        return "EMER"
    return "IMP" if s["MA_LOAI_KCB"] in INPATIENT else "AMB"


def disposition(s: Record) -> str:
    return "exp" if s["KET_QUA_DTRI"] in DEATHS else DISPOSITIONS[s["MA_LOAI_RV"]]


def _iso(name: str, text: str, tz: tzinfo) -> str | None:
    return f.moment(name, text, tz).isoformat() if len(text) == 12 else None


def resources(
    hoso: Hoso, diagnoses: tuple[str, ...], tz: tzinfo, admitted: datetime, discharged: datetime
) -> Iterator[dict[str, Any]]:
    s = hoso.summary
    lk, patient_ref = s["MA_LK"], {"reference": f"Patient/{s['MA_BN']}"}
    encounter_ref = {"reference": f"Encounter/{lk}"}
    conditions = []
    for n, code in enumerate(diagnoses, start=1):
        text = s.get("CHAN_DOAN_RV") if n == 1 else None
        conditions.append(
            {
                "resourceType": "Condition",
                "id": f"{lk}-dx{n}",
                "subject": patient_ref,
                "encounter": encounter_ref,
                "code": {"coding": [{"system": fhir.SYS_ICD10, "code": code}], "text": text},
            }
        )
    yield from (prune(c) for c in conditions)
    yield prune(_encounter(hoso, conditions, admitted, discharged))
    yield prune(_patient(s, discharged, tz))
    yield {
        "resourceType": "Organization",
        "id": s["MA_CSKCB"],
        "identifier": [{"system": fhir.SYS_FACILITY, "value": s["MA_CSKCB"]}],
        "name": f"Cơ sở khám bệnh, chữa bệnh {s['MA_CSKCB']}",
    }
    yield from _practitioner(hoso)
    yield from _procedures(hoso, tz, patient_ref)
    for n, drug in enumerate(hoso.records("XML2"), start=1):
        dose = " ".join(x for x in (drug.get("LIEU_DUNG"), drug.get("DUONG_DUNG")) if x)
        name = " ".join(x for x in (drug.get("TEN_THUOC"), drug.get("HAM_LUONG")) if x)
        yield prune(
            {
                "resourceType": "MedicationRequest",
                "id": f"{lk}-rx{n}",
                "status": "completed",
                "intent": "order",
                "subject": patient_ref,
                "encounter": encounter_ref,
                "authoredOn": _iso("NGAY_YL", drug["NGAY_YL"], tz),
                "medicationCodeableConcept": {
                    "coding": [{"system": SYS_DRUG, "code": drug["MA_THUOC"]}],
                    "text": name,
                },
                "dosageInstruction": [{"text": dose or drug.get("CACH_DUNG") or None}],
            }
        )
    for n, result in enumerate(hoso.records("XML4"), start=1):
        yield prune(_result(lk, n, result, tz, patient_ref))
    yield from _course(hoso, tz, patient_ref)


def _encounter(
    hoso: Hoso, conditions: list[dict[str, Any]], admitted: datetime, discharged: datetime
) -> dict[str, Any]:
    s = hoso.summary
    identifiers = [{"system": fhir.SYS_MA_LK, "value": s["MA_LK"]}]
    if s.get("MA_HSBA"):
        identifiers.append({"system": fhir.SYS_HSBA, "value": s["MA_HSBA"]})
    extensions = [{"url": fhir.EXT_TREATMENT_RESULT, "valueCode": s["KET_QUA_DTRI"]}]
    if s.get("MA_TAI_NAN"):
        extensions.insert(0, {"url": fhir.EXT_ACCIDENT, "valueCode": s["MA_TAI_NAN"]})
    departments = f.split_list(s.get("MA_KHOA", ""))
    doctors = [r for r in hoso.records("XML7") if r.get("MA_BS")]
    return {
        "resourceType": "Encounter",
        "id": s["MA_LK"],
        "status": "finished",
        "identifier": identifiers,
        "class": {"system": fhir.SYS_ACT_CODE, "code": encounter_class(s)},
        "subject": {"reference": f"Patient/{s['MA_BN']}"},
        "serviceProvider": {"reference": f"Organization/{s['MA_CSKCB']}"},
        "period": {"start": admitted.isoformat(), "end": discharged.isoformat()},
        "serviceType": {"coding": [{"system": fhir.SYS_DEPARTMENT, "code": departments[0]}]}
        if departments
        else None,
        "location": [{"location": {"display": d}} for d in departments],
        "diagnosis": [
            {
                "condition": {"reference": f"Condition/{c['id']}"},
                "use": {"coding": [{"system": fhir.SYS_DIAGNOSIS_ROLE, "code": "DD"}]},
                "rank": 1 if n == 0 else 2,
            }
            for n, c in enumerate(conditions)
        ],
        "participant": [
            {"individual": {"reference": f"Practitioner/{d['MA_BS'].split(';')[0]}"}}
            for d in doctors[:1]
        ],
        "hospitalization": {
            "dischargeDisposition": {
                "coding": [{"system": fhir.SYS_DISCHARGE, "code": disposition(s)}]
            }
        },
        "extension": extensions,
    }


def _patient(s: Record, discharged: datetime, tz: tzinfo) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"system": fhir.SYS_PATIENT, "value": s["MA_BN"]}]
    if s.get("SO_CCCD"):  # a string: leading zeros are part of the number
        identifiers.append({"system": fhir.SYS_CCCD, "value": s["SO_CCCD"]})
    for number, _place, start, end in f.cards(s):
        identifiers.append(
            {"system": fhir.SYS_BHYT, "value": number, "period": {"start": start, "end": end}}
        )
    return {
        "resourceType": "Patient",
        "id": s["MA_BN"],
        "identifier": identifiers,
        "name": [{"text": s["HO_TEN"]}],
        "gender": GENDERS[s["GIOI_TINH"]],
        "birthDate": f.birth_date("NGAY_SINH", s["NGAY_SINH"]),
        "address": [{"text": s["DIA_CHI"]}] if s.get("DIA_CHI") else None,
        "deceasedDateTime": discharged.isoformat() if s["KET_QUA_DTRI"] == "5" else None,
    }


def _practitioner(hoso: Hoso) -> Iterator[dict[str, Any]]:
    for paper in hoso.records("XML7")[:1]:
        if paper.get("MA_BS"):
            yield prune(
                {
                    "resourceType": "Practitioner",
                    "id": paper["MA_BS"].split(";")[0],
                    "identifier": [{"system": fhir.SYS_PRACTITIONER, "value": paper["MA_BS"]}],
                    "name": [{"text": paper.get("TEN_BS") or None}],
                }
            )


def _procedures(hoso: Hoso, tz: tzinfo, patient: dict[str, str]) -> Iterator[dict[str, Any]]:
    s, lk = hoso.summary, hoso.summary["MA_LK"]
    seen: set[str] = set()
    n = 0
    for service in hoso.records("XML3"):
        for code in f.procedure_list("MA_PTTT_QT", service.get("MA_PTTT_QT", "")):
            seen.add(code)
            n += 1
            when = _iso("NGAY_TH_YL", service.get("NGAY_TH_YL") or service["NGAY_YL"], tz)
            name = service.get("TEN_DICH_VU")
            yield prune(
                _procedure(f"{lk}-px{n}", code, name, patient) | {"performedDateTime": when}
            )
    for code in f.procedure_list("MA_PTTT_QT", s.get("MA_PTTT_QT", "")):
        if code not in seen:
            n += 1
            yield prune(_procedure(f"{lk}-px{n}", code, None, patient))


def _procedure(pid: str, code: str, name: str | None, patient: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": pid,
        "status": "completed",
        "subject": patient,
        "code": {"coding": [{"system": fhir.SYS_ICD9CM, "code": code}], "text": name or None},
    }


def _result(lk: str, n: int, result: Record, tz: tzinfo, patient: dict[str, str]) -> dict[str, Any]:
    value = result.get("GIA_TRI", "")
    try:
        number: Any = {"value": float(f.decimal("GIA_TRI", value)), "unit": result.get("DON_VI_DO")}
    except f.FieldError:
        number = None
    return {
        "resourceType": "Observation",
        "id": f"{lk}-lab{n}",
        "status": "final",
        "subject": patient,
        "effectiveDateTime": _iso("NGAY_KQ", result["NGAY_KQ"], tz),
        "code": {
            "coding": [
                {
                    "system": SYS_SERVICE,
                    "code": result.get("MA_CHI_SO") or result["MA_DICH_VU"],
                    "display": result.get("TEN_CHI_SO") or None,
                }
            ]
        },
        "valueQuantity": number,
        "valueString": None if number else (value or result.get("KET_LUAN") or None),
    }


def _course(hoso: Hoso, tz: tzinfo, patient: dict[str, str]) -> Iterator[dict[str, Any]]:
    lk = hoso.summary["MA_LK"]
    notes: list[tuple[str | None, tuple[str | None, ...]]] = []
    for entry in hoso.records("XML5"):
        progress = (entry["DIEN_BIEN_LS"], entry.get("HOI_CHAN"), entry.get("PHAU_THUAT"))
        notes.append((_iso("THOI_DIEM_DBLS", entry["THOI_DIEM_DBLS"], tz), progress))
    for paper in hoso.records("XML8"):
        summary = (paper.get("QT_BENHLY"), paper.get("TOMTAT_KQ"), paper.get("PP_DIEUTRI"))
        notes.append((_iso("NGAY_RA", paper["NGAY_RA"], tz), summary))
    for paper in hoso.records("XML13"):
        notes.append((None, (f"Chuyển tuyến đến / Referred to: {paper['MA_NOI_DEN']}",)))
    for paper in hoso.records("XML14"):
        day = f.card_date("NGAY_HEN_KL", paper["NGAY_HEN_KL"])
        notes.append((None, (f"Hẹn khám lại / Re-visit: {day}",)))
    for n, (when, parts) in enumerate(notes, start=1):
        yield prune(
            {
                "resourceType": "Observation",
                "id": f"{lk}-course{n}",
                "status": "final",
                "subject": patient,
                "code": {
                    "coding": [{"system": fhir.SYS_LOINC, "code": fhir.LOINC_HOSPITAL_COURSE}]
                },
                "effectiveDateTime": when,
                "valueString": "\n\n".join(p for p in parts if p),
            }
        )


def prune(value: Any) -> Any:
    """``value`` without ``None`` members and empty lists (absent, as FHIR wants).

    One pass, recursing only into containers: it runs on every resource of every HOSO."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, member in value.items():
            if member is None:
                continue
            if type(member) in (dict, list):
                member = prune(member)
                if member == []:
                    continue
            out[key] = member
        return out
    if kind is list:
        return [prune(v) if type(v) in (dict, list) else v for v in value if v is not None]
    return value
