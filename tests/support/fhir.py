"""A hand-written, realistic encounter Bundle (FHIR R4, type "collection") for unit tests.

It follows the collector's conventions: Encounter first, then Patient, Organization,
Practitioner(s), Condition(s), Procedure(s), MedicationRequest(s), Observation(s); Vietnamese
identifier systems (urn:vn:...), ICD-10 with Vietnamese displays, LOINC, times at +07:00. Every
person and number in it is invented.

:func:`example_bundle` returns a fresh dict each call, so a test may delete or change parts.
:func:`canonical` stands in for the collector's canonical serialisation (sorted keys, compact,
UTF-8); the renderer embeds whatever bytes it is given.
"""

from __future__ import annotations

import json
from typing import Any

PATIENT_NAME = "Nguyễn Thị Hồng Nhung"
ENCOUNTER_ID = "enc-79001-2025-000123"
RECORD_NUMBER = "HS-2025-004567"
FACILITY_CODE = "79001"
ICD10_CODES = ("I10", "E11.9", "J18.9")
ALL_VIETNAMESE = (
    "ĂÂĐÊÔƠƯăâđêôơư ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ "
    "ẠẢẤẦẨẪẬẮẰẲẴẶẸẺẼẾỀỂỄỆỈỊỌỎỐỒỔỖỘỚỜỞỠỢỤỦỨỪỬỮỰỲỴỶỸ "
    "àáãèéìíòóõùúýÀÁÃÈÉÌÍÒÓÕÙÚÝĩũĨŨ"
)

COURSE = (
    "Bệnh nhân vào viện vì sốt cao 39,5 °C, ho khạc đờm vàng, khó thở nhẹ 3 ngày nay. "
    "Tiền sử tăng huyết áp 10 năm, đái tháo đường týp 2 đang điều trị Metformin. "
    "Khám: phổi ran nổ đáy phổi phải, SpO₂ 93 % khí trời; X-quang ngực có đám mờ thùy dưới "
    "phổi phải. Điều trị kháng sinh Ceftriaxon phối hợp Azithromycin, thở oxy gọng kính "
    "2 lít/phút, kiểm soát đường huyết bằng insulin. Sau 5 ngày bệnh nhân hết sốt, ho giảm, "
    "ăn uống được, SpO₂ 97 %; được chuyển kháng sinh đường uống."
)


def _ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _encounter() -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": ENCOUNTER_ID,
        "status": "finished",
        "identifier": [
            {"system": "urn:vn:moh:hsba", "value": RECORD_NUMBER},
            {"system": "urn:vn:moh:ma-lk", "value": "79001250301000123"},
        ],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "serviceType": {
            "coding": [
                {"system": "urn:vn:moh:department", "code": "K03", "display": "Khoa Nội tổng hợp"}
            ]
        },
        "subject": _ref("Patient", "pat-1"),
        "serviceProvider": _ref("Organization", "org-79001"),
        "participant": [{"individual": _ref("Practitioner", "prac-1")}],
        "period": {"start": "2025-03-01T08:15:00+07:00", "end": "2025-03-08T10:30:00+07:00"},
        "diagnosis": [
            _dx("cond-3", "DD", 1),
            _dx("cond-1", "DD", 2),
            _dx("cond-2", "DD", 3),
            _dx("cond-3", "AD", 1),
        ],
        "hospitalization": {
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                        "code": "home",
                    }
                ]
            }
        },
        "extension": [
            {"url": "urn:vn:moh:accident-code", "valueCode": "0"},
            {"url": "urn:vn:moh:treatment-result", "valueCode": "2"},
        ],
    }


def _dx(condition: str, use: str, rank: int) -> dict[str, Any]:
    coding = {"system": "http://terminology.hl7.org/CodeSystem/diagnosis-role", "code": use}
    return {"condition": _ref("Condition", condition), "use": {"coding": [coding]}, "rank": rank}


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "pat-1",
        "identifier": [
            {"system": "urn:vn:cccd", "value": "079168001234"},
            {"system": "urn:vn:bhyt", "value": "HT2797912345678"},
            {"system": "urn:vn:moh:patient", "value": "BN-0098765"},
        ],
        "name": [{"text": PATIENT_NAME, "family": "Nguyễn", "given": ["Thị", "Hồng", "Nhung"]}],
        "gender": "female",
        "birthDate": "1968-05-12",
        "address": [{"text": "123 Đường Lê Lợi, Phường Bến Thành, Quận 1, TP. Hồ Chí Minh"}],
    }


def _organization() -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": "org-79001",
        "identifier": [{"system": "urn:vn:moh:facility", "value": FACILITY_CODE}],
        "name": "Bệnh viện Đa khoa Thành phố Hồ Chí Minh",
    }


def _practitioner() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": "prac-1",
        "name": [{"text": "BS.CKII Trần Văn Đức"}],
    }


def _condition(cid: str, code: str, display: str) -> dict[str, Any]:
    coding = {"system": "http://hl7.org/fhir/sid/icd-10", "code": code, "display": display}
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [coding]},
        "subject": _ref("Patient", "pat-1"),
    }


def _procedure(pid: str, code: str, display: str, when: str) -> dict[str, Any]:
    coding = {"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": code, "display": display}
    return {
        "resourceType": "Procedure",
        "id": pid,
        "status": "completed",
        "code": {"coding": [coding]},
        "performedDateTime": when,
        "subject": _ref("Patient", "pat-1"),
    }


def _medication(mid: str, name: str, dosage: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"text": name},
        "dosageInstruction": [{"text": dosage}],
        "subject": _ref("Patient", "pat-1"),
    }


def _observation(
    oid: str,
    loinc: str,
    display: str,
    value: float,
    unit: str,
    when: str,
    category: str = "laboratory",
    normal: tuple[float | None, float | None] | None = None,
    flag: str | None = None,
) -> dict[str, Any]:
    system = "http://terminology.hl7.org/CodeSystem/observation-category"
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": system, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}]},
        "valueQuantity": {"value": value, "unit": unit},
        "effectiveDateTime": when,
        "subject": _ref("Patient", "pat-1"),
    }
    if normal is not None:
        bounds = zip(("low", "high"), normal, strict=True)
        obs["referenceRange"] = [
            {k: {"value": v, "unit": unit} for k, v in bounds if v is not None}
        ]
    if flag is not None:
        interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
        obs["interpretation"] = [{"coding": [{"system": interpretation, "code": flag}]}]
    return obs


def _course(text: str) -> dict[str, Any]:
    code = {
        "coding": [
            {"system": "http://loinc.org", "code": "8648-8", "display": "Hospital course Narrative"}
        ]
    }
    return {
        "resourceType": "Observation",
        "id": "obs-course",
        "status": "final",
        "code": code,
        "valueString": text,
        "effectiveDateTime": "2025-03-08T09:00:00+07:00",
        "subject": _ref("Patient", "pat-1"),
    }


def example_bundle(*, course: str = COURSE) -> dict[str, Any]:
    """A two-page inpatient stay for pneumonia with hypertension and type 2 diabetes."""
    t = "2025-03-0{}T07:00:00+07:00"
    resources = [
        _encounter(),
        _patient(),
        _organization(),
        _practitioner(),
        _condition("cond-1", "I10", "Tăng huyết áp vô căn (nguyên phát)"),
        _condition("cond-2", "E11.9", "Bệnh đái tháo đường týp 2 không có biến chứng"),
        _condition("cond-3", "J18.9", "Viêm phổi, không đặc hiệu"),
        _procedure("proc-1", "87.44", "Chụp X-quang ngực thường quy", "2025-03-01T09:00:00+07:00"),
        _procedure("proc-2", "93.96", "Liệu pháp oxy", "2025-03-01T09:30:00+07:00"),
        _medication("med-1", "Ceftriaxon 1 g (bột pha tiêm)", "Tiêm tĩnh mạch 2 g/ngày, 5 ngày"),
        _medication("med-2", "Azithromycin 500 mg", "Uống 1 viên/ngày sau ăn, 3 ngày"),
        _medication("med-3", "Amlodipin 5 mg", "Uống 1 viên buổi sáng"),
        _medication(
            "med-4",
            "Insulin Mixtard 30 HM",
            "Tiêm dưới da 10 đơn vị trước ăn sáng, 8 đơn vị trước ăn tối",
        ),
        _medication(
            "med-5", "Paracetamol 500 mg", "Uống 1 viên khi sốt > 38,5 °C, cách nhau ít nhất 6 giờ"
        ),
        _observation("obs-1", "8310-5", "Nhiệt độ cơ thể", 39.5, "°C", t.format(1), "vital-signs"),
        _observation("obs-2", "8867-4", "Mạch", 102, "lần/phút", t.format(1), "vital-signs"),
        _observation(
            "obs-3", "8480-6", "Huyết áp tâm thu", 150, "mmHg", t.format(1), "vital-signs"
        ),
        _observation("obs-4", "59408-5", "SpO₂", 93, "%", t.format(1), "vital-signs"),
        _observation(
            "obs-5",
            "6690-2",
            "Bạch cầu (WBC)",
            14.2,
            "10⁹/L",
            t.format(1),
            normal=(4, 10),
            flag="H",
        ),
        _observation("obs-6", "770-8", "Bạch cầu trung tính %", 82.5, "%", t.format(1)),
        _observation(
            "obs-7",
            "1988-5",
            "CRP định lượng",
            96.4,
            "mg/L",
            t.format(1),
            normal=(None, 5),
            flag="H",
        ),
        _observation(
            "obs-8", "2345-7", "Glucose máu", 11.8, "mmol/L", t.format(1), normal=(3.9, 6.4)
        ),
        _observation("obs-9", "4548-4", "HbA1c", 8.1, "%", t.format(2)),
        _observation("obs-10", "2160-0", "Creatinin", 92, "µmol/L", t.format(2)),
        _observation("obs-11", "6690-2", "Bạch cầu (WBC)", 8.4, "10⁹/L", t.format(6)),
        _observation("obs-12", "1988-5", "CRP định lượng", 12.1, "mg/L", t.format(6)),
        _course(course),
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [_entry(r) for r in resources]}


def canonical(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
