"""Identifier systems and code meanings the discharge summary prints (Vietnamese / English).

Systems follow the collector's conventions (``urn:vn:...``); value sets are FHIR R4's
(encounter class, administrative gender, discharge disposition, diagnosis role) and the Ministry
of Health's treatment result codes (``KET_QUA_DTRI``).
"""

from __future__ import annotations

SYSTEM_HSBA = "urn:vn:moh:hsba"
SYSTEM_MA_LK = "urn:vn:moh:ma-lk"
SYSTEM_FACILITY = "urn:vn:moh:facility"
SYSTEM_DEPARTMENT = "urn:vn:moh:department"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
CLINICAL_COURSE = "8648-8"
EXT_ACCIDENT = "urn:vn:moh:accident-code"
EXT_RESULT = "urn:vn:moh:treatment-result"

ENCOUNTER_CLASS = {
    "AMB": "Ngoại trú / Outpatient",
    "IMP": "Nội trú / Inpatient",
    "EMER": "Cấp cứu / Emergency",
}
GENDER = {
    "male": "Nam / Male",
    "female": "Nữ / Female",
    "other": "Khác / Other",
    "unknown": "Không rõ / Unknown",
}
DISPOSITION = {
    "home": "Về nhà / Home",
    "alt-home": "Về nơi ở khác / Alternative home",
    "other-hcf": "Chuyển cơ sở y tế khác / Transferred to another facility",
    "hosp": "Chăm sóc giảm nhẹ / Hospice",
    "long": "Chăm sóc dài hạn / Long-term care",
    "aadvice": "Tự ý ra viện / Left against advice",
    "exp": "Tử vong / Died",
    "psy": "Chuyển cơ sở tâm thần / Psychiatric hospital",
    "rehab": "Chuyển phục hồi chức năng / Rehabilitation",
    "snf": "Chuyển cơ sở điều dưỡng / Skilled nursing facility",
    "oth": "Khác / Other",
}
TREATMENT_RESULT = {  # MOH treatment result codes (KET_QUA_DTRI)
    "1": "Khỏi / Cured",
    "2": "Đỡ, giảm / Improved",
    "3": "Không thay đổi / Unchanged",
    "4": "Nặng hơn / Worse",
    "5": "Tử vong / Death",
    "6": "Tiên lượng nặng xin về / Discharged at family request, poor prognosis",
    "7": "Chưa xác định / Undetermined",
    "8": "Tử vong ngoài viện / Death outside hospital",
}
DIAGNOSIS_USE = {
    "AD": "Vào viện",
    "DD": "Ra viện",
    "CC": "Lý do vào viện",
    "CM": "Bệnh kèm theo",
    "pre-op": "Trước phẫu thuật",
    "post-op": "Sau phẫu thuật",
}
USE_ORDER = {"AD": 0, "CC": 1, "DD": 2}
