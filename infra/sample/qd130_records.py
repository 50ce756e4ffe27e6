"""The tables of one synthetic QĐ 130 HOSO: XML1 and the detail tables, as a HIS fills them.

Takes a :class:`~infra.sample.dice.Dice`, a running number and a discharge time; returns the
inner XML of each table (``LOAIHOSO`` → UTF-8 bytes, NFC Vietnamese text). Cases follow the FHIR
sample's scenarios (diagnoses, procedures, accidents, deaths, chapter F), and add what only QĐ 130
has: insured and uninsured visits, a new card issued during a long stay, two-character
``MA_LOAI_KCB``, ``SO_CCCD`` with its leading zero.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from xml.sax.saxutils import escape

from infra.sample import tables
from infra.sample.dice import Dice

FACILITY: Final = tables.FACILITIES[0].code
_SEX: Final = {"1": "male", "2": "female"}


@dataclass(slots=True)
class Hoso:
    ma_lk: str
    tables: dict[str, bytes] = field(default_factory=dict)
    summary: dict[str, str] = field(default_factory=dict)


def _xml(root: str, body: str) -> bytes:
    text = f'<?xml version="1.0" encoding="utf-8"?>\n<{root}>{body}</{root}>'
    return unicodedata.normalize("NFC", text).encode("utf-8")


def _fields(values: dict[str, str]) -> str:
    return "".join(f"<{k}>{escape(v)}</{k}>" for k, v in values.items())


def _list(root: str, holder: str, item: str, rows: list[dict[str, str]]) -> bytes:
    body = "".join(f"<{item}>{_fields(r)}</{item}>" for r in rows)
    return _xml(root, f"<{holder}>{body}</{holder}>")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M")


def make_hoso(dice: Dice, n: int, discharged: datetime) -> Hoso:
    rng = dice.rng
    scenario = rng.choices(tables.SCENARIOS, weights=[s.weight for s in tables.SCENARIOS])[0]
    klass = rng.choice(scenario.classes)
    inpatient = klass != "AMB"
    stay = (
        timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 20))
        if inpatient
        else (timedelta(hours=rng.randint(1, 5)))
    )
    admitted = discharged - stay
    sex = {"male": "1", "female": "2"}[scenario.sex] if scenario.sex else rng.choice("12")
    names = tables.MIDDLE_MALE if sex == "1" else tables.MIDDLE_FEMALE
    given = tables.GIVEN_MALE if sex == "1" else tables.GIVEN_FEMALE
    family = rng.choices(tables.FAMILY_NAMES, weights=[f.weight for f in tables.FAMILY_NAMES])[0]
    name = f"{family.value} {rng.choice(names)} {rng.choice(given)}"
    age = rng.randint(*scenario.ages)
    birth = f"{discharged.year - age:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}0000"
    if n % 23 == 0:
        birth = f"{discharged.year - age:04d}00000000"  # only the year is known
    ma_lk = f"{FACILITY}{discharged:%y%m%d}{n:06d}"
    main = rng.choice(scenario.principal)
    extra = rng.sample(scenario.comorbid, k=min(len(scenario.comorbid), rng.randint(0, 2)))
    if n % 17 == 0 and not main.startswith("F"):
        extra.append("F32.1")  # a chapter F comorbidity
    procedures = [rng.choice(scenario.procedures)] if scenario.procedures else []
    died = rng.random() < scenario.fatal_rate or n % 12 == 5
    result = "5" if died else rng.choice("1122237")
    discharge_type = "2" if (not died and n % 13 == 0) else "1"
    insured = n % 7 != 0
    cards = _cards(dice, discharged, admitted, multi=insured and inpatient and n % 5 == 0)
    department = scenario.department
    summary = {
        "MA_LK": ma_lk,
        "STT": "1",
        "MA_BN": f"BN{n % 400:07d}",
        "HO_TEN": name,
        "SO_CCCD": _cccd(n, sex, rng.randint(0, 10**8 - 1)),
        "NGAY_SINH": birth,
        "GIOI_TINH": sex,
        "DIA_CHI": f"{rng.choice(tables.HAMLETS)}, {tables.PROVINCES[0].name}",
        "MA_THE_BHYT": ";".join(c[0] for c in cards) if insured else "",
        "MA_DKBD": ";".join(c[1] for c in cards) if insured else "",
        "GT_THE_TU": ";".join(c[2] for c in cards) if insured else "",
        "GT_THE_DEN": ";".join(c[3] for c in cards) if insured else "",
        "LY_DO_VV": rng.choice(scenario.complaint),
        "CHAN_DOAN_VAO": rng.choice(scenario.complaint),
        "CHAN_DOAN_RV": f"Chẩn đoán ra viện: {main}",
        "MA_BENH_CHINH": main,
        "MA_BENH_KT": ";".join(extra),
        "MA_PTTT_QT": ";".join(procedures),
        "MA_DOITUONG_KCB": "2" if klass == "EMER" else "1",
        "MA_TAI_NAN": scenario.accident if scenario.accident != "0" else "",
        "NGAY_VAO": stamp(admitted),
        "NGAY_VAO_NOI_TRU": stamp(admitted) if inpatient else "",
        "NGAY_RA": stamp(discharged),
        "SO_NGAY_DTRI": str(max(1, stay.days)),
        "KET_QUA_DTRI": result,
        "MA_LOAI_RV": discharge_type,
        "MA_LOAI_KCB": "03" if inpatient else "01",
        "MA_KHOA": department if not inpatient else f"K01;{department}",
        "MA_CSKCB": FACILITY,
        "MA_HSBA": f"HS{discharged:%Y}{n:06d}",
        "NGAY_TAI_KHAM": "",
    }
    hoso = Hoso(ma_lk, summary=summary)
    hoso.tables["XML1"] = _xml("TONG_HOP", _fields(summary))
    _details(dice, hoso, scenario, admitted, discharged, inpatient, procedures)
    if discharge_type == "2":
        referral = {"MA_LK": ma_lk, "MA_NOI_DEN": "01001", "CHAN_DOAN_RV": summary["CHAN_DOAN_RV"]}
        hoso.tables["XML13"] = _xml("CHI_TIEU_DU_LIEU_GIAY_CHUYEN_TUYEN", _fields(referral))
    if not died and n % 4 == 0:
        day = (discharged + timedelta(days=14)).strftime("%Y%m%d")
        visit = {"MA_LK": ma_lk, "NGAY_HEN_KL": day, "CHAN_DOAN_RV": summary["CHAN_DOAN_RV"]}
        hoso.tables["XML14"] = _xml("CHI_TIEU_DU_LIEU_GIAY_HEN_KHAM_LAI", _fields(visit))
    if inpatient and n % 9 == 0:  # a leave certificate: kept, not rendered
        hoso.tables["XML11"] = _xml(
            "CHI_TIEU_DU_LIEU_GIAY_CHUNG_NHAN_NGHI_VIEC_HUONG_BHXH",
            _fields({"MA_LK": ma_lk, "SO_NGAY": "5"}),
        )
    return hoso


def _cccd(n: int, sex: str, serial: int) -> str:
    # Province code (with its leading zero), sex/century digit, serial: 12 digits, "0" first.
    return f"0{tables.PROVINCES[n % len(tables.PROVINCES)].code[1:]}{sex}{serial:08d}"


def _cards(
    dice: Dice, discharged: datetime, admitted: datetime, *, multi: bool
) -> list[tuple[str, str, str, str]]:
    rng = dice.rng
    objects = tables.BHYT_OBJECTS
    first = rng.choices(objects, weights=[o.weight for o in objects])[0].value
    number = f"{first}4{tables.PROVINCES[0].code[1:]}{rng.randint(0, 10**10 - 1):010d}"
    year = admitted.year
    if not multi:
        return [(number, FACILITY, f"{year}0101", f"{year}1231")]
    # A new card issued during the stay: the old one ends the day before the new one starts.
    switch = admitted + (discharged - admitted) / 2
    renewed = f"{first}4{tables.PROVINCES[0].code[1:]}{rng.randint(0, 10**10 - 1):010d}"
    return [
        (
            number,
            FACILITY,
            f"{year - 1}{admitted:%m%d}",
            (switch - timedelta(days=1)).strftime("%Y%m%d"),
        ),
        (renewed, FACILITY, switch.strftime("%Y%m%d"), f"{switch.year + 1}{switch:%m%d}"),
    ]


def _details(
    dice: Dice,
    hoso: Hoso,
    scenario: tables.Scenario,
    admitted: datetime,
    discharged: datetime,
    inpatient: bool,
    procedures: list[str],
) -> None:
    rng, lk, s = dice.rng, hoso.ma_lk, hoso.summary
    ordered = admitted + timedelta(minutes=30)
    drugs = []
    for n, key in enumerate(scenario.medications, start=1):
        med = tables.MEDICATIONS[key]
        drugs.append(
            {
                "MA_LK": lk,
                "STT": str(n),
                "MA_THUOC": f"40.{100 + n}",
                "TEN_THUOC": med.text,
                "LIEU_DUNG": med.dosage,
                "DUONG_DUNG": "Uống",
                "SO_LUONG": f"{rng.randint(1, 20)}.00",
                "DON_GIA": f"{rng.randint(1, 90) * 1000}",
                "MA_KHOA": scenario.department,
                "NGAY_YL": stamp(ordered),
            }
        )
    hoso.tables["XML2"] = _list(
        "CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC", drugs
    )
    services = [
        {
            "MA_LK": lk,
            "STT": "1",
            "MA_DICH_VU": "02.1896",
            "TEN_DICH_VU": "Khám bệnh",
            "SO_LUONG": "1",
            "NGAY_YL": stamp(admitted),
        },
    ]
    for n, code in enumerate(procedures, start=2):
        services.append(
            {
                "MA_LK": lk,
                "STT": str(n),
                "MA_DICH_VU": f"10.{n:04d}",
                "TEN_DICH_VU": "Phẫu thuật / thủ thuật theo chỉ định",
                "MA_PTTT_QT": code,
                "SO_LUONG": "1",
                "NGAY_YL": stamp(ordered),
                "NGAY_TH_YL": stamp(ordered + timedelta(hours=3)),
            }
        )
    hoso.tables["XML3"] = _list(
        "CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT", services
    )
    labs = [m for m in tables.LABS if m.loinc in scenario.labs]
    results = [
        {
            "MA_LK": lk,
            "STT": str(n),
            "MA_DICH_VU": f"22.{n:04d}",
            "MA_CHI_SO": m.loinc,
            "TEN_CHI_SO": m.text,
            "GIA_TRI": f"{max(m.low, min(m.high, rng.gauss(m.mean, m.sd))):.{m.decimals}f}",
            "DON_VI_DO": m.unit,
            "NGAY_KQ": stamp(ordered + timedelta(hours=2)),
        }
        for n, m in enumerate(labs, start=1)
    ]
    hoso.tables["XML4"] = _list(
        "CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS", results
    )
    if not inpatient:
        return
    days = max(1, (discharged - admitted).days)
    progress = [
        {
            "MA_LK": lk,
            "STT": str(d + 1),
            "DIEN_BIEN_LS": rng.choice(tables.NOTE_PROGRESS),
            "THOI_DIEM_DBLS": stamp(admitted + timedelta(days=d, hours=8)),
        }
        for d in range(min(days, 5))
    ]
    hoso.tables["XML5"] = _list(
        "CHITIEU_CHITIET_DIENBIENLAMSANG",
        "DSACH_CHI_TIET_DIEN_BIEN_BENH",
        "CHI_TIET_DIEN_BIEN_BENH",
        progress,
    )
    paper = {
        "MA_LK": lk,
        "NGAY_VAO": s["NGAY_VAO"],
        "NGAY_RA": s["NGAY_RA"],
        "CHAN_DOAN_RV": s["CHAN_DOAN_RV"],
        "PP_DIEUTRI": "Điều trị nội khoa",
        "MA_BS": f"BS{rng.randint(1, 40):04d}",
        "TEN_BS": "BS. " + rng.choice(tables.GIVEN_MALE),
    }
    hoso.tables["XML7"] = _xml("CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", _fields(paper))
    record = {
        "MA_LK": lk,
        "MA_LOAI_KCB": s["MA_LOAI_KCB"],
        "NGAY_VAO": s["NGAY_VAO"],
        "NGAY_RA": s["NGAY_RA"],
        "CHAN_DOAN_VAO": s["CHAN_DOAN_VAO"],
        "CHAN_DOAN_RV": s["CHAN_DOAN_RV"],
        "QT_BENHLY": rng.choice(tables.NOTE_HISTORY),
        "TOMTAT_KQ": rng.choice(tables.NOTE_EXAM),
        "PP_DIEUTRI": "Điều trị nội khoa",
        "KET_QUA_DTRI": s["KET_QUA_DTRI"],
    }
    hoso.tables["XML8"] = _xml("CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN", _fields(record))
