"""The synthetic QĐ 130 sample: one day of a HIS's ``GIAMDINHHS`` export, with faults planted.

Takes a seed, a day and a number of encounters; writes into ``out`` a daily file holding most
HOSO, a few single-HOSO files (as a HIS sends each record to the insurance gateway), and two
broken files; byte-identical for the same arguments. Planted faults cover every refusal of the
reader: invalid Base64, an external entity, entity expansion, deep nesting, a huge text node, a
UTF-16 table, an invalid ICD-10 code, an impossible date, a one-character MA_LOAI_KCB, two
different HOSO with one MA_LK, a file with a DTD and a truncated file. Given a development
``facility`` (:mod:`infra.sample.qd130_signing`), the single-HOSO files carry its XML signature
in ``CHUKYDONVI`` and one more file is planted with a signature broken after signing.
:class:`Qd130Summary` says what a correct collector must archive and quarantine.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from archive.core.timezones import zone
from archive.sources import QuarantineReason, QuarantineScope
from infra.sample.dice import Dice
from infra.sample.qd130_records import FACILITY, Hoso, make_hoso
from infra.sample.qd130_signing import DevFacility, sign_file

R = QuarantineReason
_LAUGHS: Final = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    b"<CHITIEU_CHITIET_DICHVUCANLAMSANG>&d;</CHITIEU_CHITIET_DICHVUCANLAMSANG>"
)
_XXE: Final = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/leak">]>'
    b"<CHITIEU_CHITIET_DVKT_VTYT>&e;</CHITIEU_CHITIET_DVKT_VTYT>"
)
# (kind, the table it spoils, the expected reason)
PLANTED: Final = (
    ("invalid-base64", "XML2", R.INVALID_BASE64),
    ("external-entity", "XML3", R.HOSTILE_XML),
    ("entity-expansion", "XML4", R.HOSTILE_XML),
    ("deep-nesting", "XML2", R.HOSTILE_XML),
    ("huge-text", "XML2", R.OVERSIZED_XML),
    ("utf16-table", "XML2", R.MALFORMED_XML),
    ("invalid-icd10", "XML1", R.INVALID_ICD10),
    ("impossible-date", "XML1", R.INVALID_DATETIME),
    ("one-char-encounter-type", "XML1", R.INVALID_CODE),
)


@dataclass(slots=True)
class Qd130Summary:
    archived: list[str] = field(default_factory=list)  # MA_LK expected as records
    held: dict[str, QuarantineReason] = field(default_factory=dict)  # MA_LK → reason
    files: dict[str, tuple[QuarantineScope, QuarantineReason]] = field(default_factory=dict)
    outside: int = 0  # HOSO discharged outside the day
    signed: list[str] = field(default_factory=list)  # MA_LK of HOSO in validly signed files
    size_bytes: int = 0


def write_qd130_export(
    out: Path,
    *,
    encounters: int,
    seed: int,
    day: date,
    tz: str,
    bad: bool = True,
    facility: DevFacility | None = None,
) -> Qd130Summary:
    out.mkdir(parents=True, exist_ok=True)
    dice = Dice(random.Random(seed))  # noqa: S311 - reproducible fake data
    summary = Qd130Summary()
    start = datetime.combine(day, time(0), tzinfo=zone(tz))
    day_file: list[bytes] = []
    for n in range(1, encounters + 1):
        outside = n % 10 == 0
        moment = start + timedelta(minutes=dice.rng.randint(0, 24 * 60 - 1))
        hoso = make_hoso(dice, n, moment - timedelta(days=1) if outside else moment)
        block = _hoso_xml(hoso)
        if outside:
            summary.outside += 1
        else:
            summary.archived.append(hoso.ma_lk)
        if n % 11 == 0:  # sent on its own, as to the insurance gateway
            single = _envelope([block], day)
            if facility is not None:
                single = sign_file(single, facility)
                summary.signed += [] if outside else [hoso.ma_lk]
            _write(out / f"HOSO_{hoso.ma_lk}.xml", single, summary)
        else:
            day_file.append(block)
    if bad:
        blocks, broken = _planted(dice, start, encounters, summary)
        day_file += blocks
        for name, data in broken.items():
            _write(out / name, data, summary)
        if facility is not None:
            _write(out / "HOSO_bad_signature.xml", _badly_signed(dice, start, facility), summary)
            scope_reason = (QuarantineScope.FILE, R.FACILITY_SIGNATURE_INVALID)
            summary.files["HOSO_bad_signature.xml"] = scope_reason
    _write(out / f"{day:%Y%m%d}_{FACILITY}_GIAMDINHHS.xml", _envelope(day_file, day), summary)
    return summary


def _planted(
    dice: Dice, start: datetime, encounters: int, summary: Qd130Summary
) -> tuple[list[bytes], dict[str, bytes]]:
    """Spoiled HOSO for the day file, and whole broken files by name."""
    blocks = []
    for k, (kind, table, reason) in enumerate(PLANTED, start=1):
        hoso = make_hoso(dice, encounters + k, start + timedelta(hours=12))
        _spoil(hoso, kind, table)
        broken = {"XML2": b"@@ not base64 @@"} if kind == "invalid-base64" else None
        blocks.append(_hoso_xml(hoso, raw_b64=broken))
        summary.held[hoso.ma_lk] = reason
    twin_a = make_hoso(dice, encounters + 100, start + timedelta(hours=13))
    twin_b = make_hoso(dice, encounters + 100, start + timedelta(hours=14))
    blocks += [_hoso_xml(twin_a), _hoso_xml(twin_b)]
    summary.held[twin_a.ma_lk] = R.DUPLICATE_ID
    hostile = b'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS SYSTEM "http://127.0.0.1:9/x.dtd">'
    day = start.date()
    bad_files = {
        "HOSO_hostile_dtd.xml": (hostile + _envelope([], day).split(b"?>", 1)[1], R.HOSTILE_XML),
        "HOSO_truncated.xml": (_envelope([blocks[0]], day)[:-40], R.MALFORMED_XML),
    }
    for name, (_, file_reason) in bad_files.items():
        summary.files[name] = (QuarantineScope.FILE, file_reason)
    return blocks, {name: data for name, (data, _) in bad_files.items()}


def _badly_signed(dice: Dice, start: datetime, facility: DevFacility) -> bytes:
    """A good HOSO signed by the facility, then its file changed where nothing else looks (the
    date the file was made): only the signature can tell."""
    hoso = make_hoso(dice, 900_001, start + timedelta(hours=15))
    signed = sign_file(_envelope([_hoso_xml(hoso)], start.date()), facility)
    made = f"<NGAYLAP>{start.date() + timedelta(days=1):%Y%m%d}<".encode()
    return signed.replace(made, f"<NGAYLAP>{start.date() + timedelta(days=2):%Y%m%d}<".encode())


def _spoil(hoso: Hoso, kind: str, table: str) -> None:
    t = hoso.tables
    if kind == "external-entity":
        t["XML3"] = _XXE
    elif kind == "entity-expansion":
        t["XML4"] = _LAUGHS
    elif kind == "deep-nesting":
        t["XML2"] = (
            b"<CHITIEU_CHITIET_THUOC>" + b"<a>" * 200 + b"</a>" * 200 + b"</CHITIEU_CHITIET_THUOC>"
        )
    elif kind == "huge-text":
        t["XML2"] = t["XML2"].replace(b"<TEN_THUOC>", b"<TEN_THUOC>" + b"A" * (1 << 20) + b" ", 1)
    elif kind == "utf16-table":
        t["XML2"] = (
            t["XML2"]
            .decode("utf-8")
            .replace('encoding="utf-8"', 'encoding="utf-16"')
            .encode("utf-16")
        )
    elif kind in ("invalid-icd10", "impossible-date", "one-char-encounter-type"):
        field_name, value = {
            "invalid-icd10": ("MA_BENH_CHINH", "E99"),
            "impossible-date": ("NGAY_VAO", hoso.summary["NGAY_RA"][:4] + "02300800"),
            "one-char-encounter-type": ("MA_LOAI_KCB", hoso.summary["MA_LOAI_KCB"][-1]),
        }[kind]
        old = f"<{field_name}>{hoso.summary[field_name]}</{field_name}>".encode()
        t["XML1"] = t["XML1"].replace(old, f"<{field_name}>{value}</{field_name}>".encode(), 1)


def _hoso_xml(hoso: Hoso, raw_b64: dict[str, bytes] | None = None) -> bytes:
    parts = [b"<HOSO>"]
    for kind, data in hoso.tables.items():
        content = (raw_b64 or {}).get(kind) or base64.b64encode(data)
        parts.append(
            b"<FILEHOSO><LOAIHOSO>%s</LOAIHOSO><NOIDUNGFILE>%s</NOIDUNGFILE></FILEHOSO>"
            % (kind.encode(), content)
        )
    parts.append(b"</HOSO>")
    return b"".join(parts)


def _envelope(blocks: list[bytes], day: date) -> bytes:
    head = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<GIAMDINHHS><THONGTINDONVI><MACSKCB>{FACILITY}'
        f"</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>{day + timedelta(days=1):%Y%m%d}"
        f"</NGAYLAP><SOLUONGHOSO>{len(blocks)}</SOLUONGHOSO><DANHSACHHOSO>\n"
    ).encode()
    tail = b"</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI></CHUKYDONVI></GIAMDINHHS>\n"
    return head + b"\n".join(blocks) + b"\n" + tail


def _write(path: Path, data: bytes, summary: Qd130Summary) -> None:
    path.write_bytes(data)
    summary.size_bytes += len(data)
