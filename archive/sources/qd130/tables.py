"""The inner tables of a HOSO: which element holds the records, which fields they need, and the
rule each field obeys.

Written from the per-table specifications of QĐ 130 (amended by QĐ 4750 and QĐ 3176); no official
XSD exists. A table is read as a list of flat records (``dict`` of field name to text, as written):
XML1 and the papers (XML7, 8, 13, 14) hold one record at the root, the detail tables (XML2-5) a
list of them. Fields the specification adds later are kept, never refused; a field listed here
that breaks its rule, or a required one that is missing, holds the encounter back with the
reason of :mod:`archive.sources.qd130.fields`. Tables not listed (XML6, 9-12, 15, the check-in
table) are only checked for well-formedness and are kept in the embedded original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Final

from archive.sources.qd130 import fields as f
from archive.sources.qd130.fields import FieldError
from archive.sources.quarantine import QuarantineReason

Record = dict[str, str]
Rule = Callable[[str, str, tzinfo], object]


def _moment(name: str, text: str, tz: tzinfo) -> object:
    return f.moment(name, text, tz)


def _birth(name: str, text: str, tz: tzinfo) -> object:
    return f.birth_date(name, text)


def _day(name: str, text: str, tz: tzinfo) -> object:
    return f.card_date(name, text)


def _moments(name: str, text: str, tz: tzinfo) -> object:
    return [
        f.moment(name, t, tz) if len(t) == 12 else f.card_date(name, t) for t in f.split_list(text)
    ]


def _decimal(name: str, text: str, tz: tzinfo) -> object:
    return f.decimal(name, text)


def _icd10(name: str, text: str, tz: tzinfo) -> object:
    return f.icd10(name, text)


def _icd10s(name: str, text: str, tz: tzinfo) -> object:
    return f.icd10_list(name, text)


def _procedures(name: str, text: str, tz: tzinfo) -> object:
    return f.procedure_list(name, text)


def _facility(name: str, text: str, tz: tzinfo) -> object:
    return f.facility(name, text)


def _code_list(allowed: frozenset[str]) -> Rule:
    def rule(name: str, text: str, tz: tzinfo) -> object:
        return f.one_of(name, text, allowed)

    return rule


_COMMON: Final[Mapping[str, Rule]] = {
    "NGAY_SINH": _birth,
    "NGAY_VAO": _moment,
    "NGAY_VAO_NOI_TRU": _moment,
    "NGAY_RA": _moment,
    "NGAY_YL": _moment,
    "NGAY_TH_YL": _moment,
    "NGAY_KQ": _moment,
    "NGAY_CT": _day,
    "NGAY_TAI_KHAM": _moments,
    "NGAY_HEN_KL": _day,
    "THOI_DIEM_DBLS": _moment,
    "SO_LUONG": _decimal,
    "DON_GIA": _decimal,
    "THANH_TIEN_BV": _decimal,
    "MA_BENH_CHINH": _icd10,
    "MA_BENH_KT": _icd10s,
    "MA_PTTT_QT": _procedures,
    "MA_CSKCB": _facility,
    "MA_LOAI_KCB": _code_list(f.ENCOUNTER_TYPES),
    "KET_QUA_DTRI": _code_list(f.TREATMENT_RESULTS),
    "MA_LOAI_RV": _code_list(f.DISCHARGE_TYPES),
    "GIOI_TINH": _code_list(f.SEXES),
    "MA_TAI_NAN": _code_list(f.ACCIDENT_CODES_SET),
}


_RULED: Final = frozenset(_COMMON)


@dataclass(frozen=True, slots=True)
class TableSpec:
    kind: str  # LOAIHOSO: XML1 ... XML15
    root: str
    record_path: tuple[str, ...]  # below the root; () = the root is the only record
    required: tuple[str, ...]

    def check(self, record: Record, tz: tzinfo) -> None:
        """Raise :class:`FieldError` for the first missing required field or broken rule.

        A record that passes (nearly all) is checked in C-speed steps: every required field at
        once, then only the fields that have a rule; one that fails is checked again in field
        order by :meth:`first_problem`, so the problem reported is the same whichever fails."""
        if all(map(record.get, self.required)):
            try:
                for name in record.keys() & _RULED:
                    text = record[name]
                    if text:
                        _COMMON[name](name, text, tz)
            except FieldError:
                pass
            else:
                return
        self.first_problem(record, tz)

    def first_problem(self, record: Record, tz: tzinfo) -> None:
        """:meth:`check` field by field, in order: raise for the first problem met."""
        for name in self.required:
            if not record.get(name):
                raise FieldError(
                    QuarantineReason.MALFORMED_RESOURCE, f"{self.kind} lacks required {name}"
                )
        for name, text in record.items():
            rule = _COMMON.get(name)
            if rule is not None and text:
                rule(f"{self.kind} {name}", text, tz)


SPECS: Final[Mapping[str, TableSpec]] = {
    spec.kind: spec
    for spec in (
        TableSpec(
            "XML1",
            "TONG_HOP",
            (),
            (
                *("MA_LK", "MA_BN", "HO_TEN", "NGAY_SINH", "GIOI_TINH", "MA_BENH_CHINH"),
                *("NGAY_VAO", "NGAY_RA", "MA_LOAI_KCB", "MA_CSKCB", "KET_QUA_DTRI", "MA_LOAI_RV"),
            ),
        ),
        TableSpec(
            "XML2",
            "CHITIEU_CHITIET_THUOC",
            ("DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC"),
            ("MA_LK", "STT", "MA_THUOC", "TEN_THUOC", "SO_LUONG", "NGAY_YL"),
        ),
        TableSpec(
            "XML3",
            "CHITIEU_CHITIET_DVKT_VTYT",
            ("DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT"),
            ("MA_LK", "STT", "SO_LUONG", "NGAY_YL"),
        ),
        TableSpec(
            "XML4",
            "CHITIEU_CHITIET_DICHVUCANLAMSANG",
            ("DSACH_CHI_TIET_CLS", "CHI_TIET_CLS"),
            ("MA_LK", "STT", "MA_DICH_VU", "NGAY_KQ"),
        ),
        TableSpec(
            "XML5",
            "CHITIEU_CHITIET_DIENBIENLAMSANG",
            ("DSACH_CHI_TIET_DIEN_BIEN_BENH", "CHI_TIET_DIEN_BIEN_BENH"),
            ("MA_LK", "STT", "DIEN_BIEN_LS", "THOI_DIEM_DBLS"),
        ),
        TableSpec("XML7", "CHI_TIEU_DU_LIEU_GIAY_RA_VIEN", (), ("MA_LK", "NGAY_VAO", "NGAY_RA")),
        TableSpec(
            "XML8",
            "CHI_TIEU_DU_LIEU_TOM_TAT_HO_SO_BENH_AN",
            (),
            ("MA_LK", "NGAY_VAO", "NGAY_RA", "CHAN_DOAN_RV"),
        ),
        TableSpec(
            "XML13",
            "CHI_TIEU_DU_LIEU_GIAY_CHUYEN_TUYEN",
            (),
            ("MA_LK", "MA_NOI_DEN", "CHAN_DOAN_RV"),
        ),
        TableSpec(
            "XML14",
            "CHI_TIEU_DU_LIEU_GIAY_HEN_KHAM_LAI",
            (),
            ("MA_LK", "NGAY_HEN_KL"),
        ),
    )
}
