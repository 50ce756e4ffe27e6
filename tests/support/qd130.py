"""Builders for QĐ 130 files in unit tests: a valid HOSO whose tables a test can spoil.

:func:`summary` is a complete, valid XML1 record; :func:`hoso` wraps tables (``LOAIHOSO`` →
inner XML bytes, or raw Base64 text) into a HOSO; :func:`envelope` wraps HOSO into a
``GIAMDINHHS`` file.
"""

from __future__ import annotations

import base64
from xml.sax.saxutils import escape

FACILITY = "17001"
DAY = "20250310"


def summary(**changes: str) -> dict[str, str]:
    values = {
        "MA_LK": "LK0001",
        "STT": "1",
        "MA_BN": "BN0000001",
        "HO_TEN": "Nguyễn Thị Ánh",
        "SO_CCCD": "017190000123",
        "NGAY_SINH": "199005010000",
        "GIOI_TINH": "2",
        "MA_THE_BHYT": "HT4170000000123",
        "MA_DKBD": FACILITY,
        "GT_THE_TU": "20250101",
        "GT_THE_DEN": "20251231",
        "CHAN_DOAN_RV": "Viêm phổi",
        "MA_BENH_CHINH": "J18.9",
        "MA_BENH_KT": "I10",
        "MA_PTTT_QT": "",
        "MA_DOITUONG_KCB": "1",
        "MA_TAI_NAN": "",
        "NGAY_VAO": f"{DAY[:6]}050800",
        "NGAY_RA": f"{DAY}0930",
        "KET_QUA_DTRI": "1",
        "MA_LOAI_RV": "1",
        "MA_LOAI_KCB": "03",
        "MA_KHOA": "K03",
        "MA_CSKCB": FACILITY,
        "MA_HSBA": "HS2025000001",
    }
    values.update(changes)
    return values


def xml1(**changes: str) -> bytes:
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in summary(**changes).items())
    return f'<?xml version="1.0" encoding="utf-8"?><TONG_HOP>{body}</TONG_HOP>'.encode()


def hoso(tables: dict[str, bytes], *, raw: dict[str, bytes] | None = None) -> bytes:
    parts = [b"<HOSO>"]
    for kind, data in tables.items():
        content = (raw or {}).get(kind) or base64.b64encode(data)
        parts.append(
            b"<FILEHOSO><LOAIHOSO>%s</LOAIHOSO><NOIDUNGFILE>%s</NOIDUNGFILE></FILEHOSO>"
            % (kind.encode(), content)
        )
    return b"".join([*parts, b"</HOSO>"])


def envelope(*blocks: bytes, prolog: bytes = b'<?xml version="1.0" encoding="utf-8"?>\n') -> bytes:
    return (
        prolog
        + b"<GIAMDINHHS><THONGTINDONVI><MACSKCB>"
        + FACILITY.encode()
        + b"</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>20250311</NGAYLAP><SOLUONGHOSO>"
        + str(len(blocks)).encode()
        + b"</SOLUONGHOSO><DANHSACHHOSO>"
        + b"\n".join(blocks)
        + b"</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI></CHUKYDONVI></GIAMDINHHS>"
    )
