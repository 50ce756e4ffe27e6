"""Hostile QĐ 130 input is refused without harm: quarantined with a reason, nothing fetched,
nothing expanded, memory bounded. Each test is an attack on one protection."""

from __future__ import annotations

import socket
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from archive.sources import (
    EncounterBundle,
    QuarantineEntry,
    QuarantineReason,
    QuarantineScope,
    Window,
)
from archive.sources.qd130 import Limits, collect
from tests.support import qd130 as q

R = QuarantineReason
WINDOW = Window.for_day(date(2025, 3, 10))
SMALL = Limits(max_hoso_bytes=1 << 20, max_table_bytes=256 << 10, max_text_chars=64 << 10)


class Listener:
    """A loopback TCP port that counts connections: an XXE fetch would knock here."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def run(tmp_path: Path, data: bytes, limits: Limits = SMALL) -> list[object]:
    (tmp_path / "day.xml").write_bytes(data)
    return list(collect(tmp_path, window=WINDOW, limits=limits))


def only_entry(items: list[object]) -> QuarantineEntry:
    assert len(items) == 1, items
    entry = items[0]
    assert isinstance(entry, QuarantineEntry)
    return entry


def test_a_valid_hoso_is_collected(tmp_path: Path) -> None:
    # The control: the attacks below differ from this file only by their payload.
    items = run(tmp_path, q.envelope(q.hoso({"XML1": q.xml1()})))
    assert [type(i) for i in items] == [EncounterBundle]


def test_external_entity_in_the_envelope_is_refused_unfetched(
    tmp_path: Path, listener: Listener
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    prolog = (
        f'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS [<!ENTITY s SYSTEM "file://{secret}">'
        f'<!ENTITY n SYSTEM "http://127.0.0.1:{listener.port}/x">]>'
    ).encode()
    data = q.envelope(q.hoso({"XML1": q.xml1()}), prolog=prolog).replace(
        b"<NGAYLAP>", b"<NGAYLAP>&s;&n;"
    )
    entry = only_entry(run(tmp_path, data))
    assert (entry.scope, entry.reason) == (QuarantineScope.FILE, R.HOSTILE_XML)
    assert "DOCTYPE" in entry.detail
    assert listener.hits == 0
    assert b"TOP-SECRET" not in entry.raw_line.replace(str(secret).encode(), b"")


def test_external_entity_in_an_inner_table_is_refused_unfetched(
    tmp_path: Path, listener: Listener
) -> None:
    inner = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY n SYSTEM "http://127.0.0.1:{listener.port}/">]>'
        "<CHITIEU_CHITIET_THUOC>&n;</CHITIEU_CHITIET_THUOC>"
    ).encode()
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": q.xml1(), "XML2": inner}))))
    assert (entry.scope, entry.reason) == (QuarantineScope.ENCOUNTER, R.HOSTILE_XML)
    assert listener.hits == 0


def test_entity_expansion_is_refused_before_it_grows(tmp_path: Path) -> None:
    levels = "".join(
        f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' if i else '<!ENTITY e0 "lol">' for i in range(10)
    )
    prolog = f'<?xml version="1.0"?><!DOCTYPE GIAMDINHHS [{levels}]>'.encode()
    data = q.envelope(q.hoso({"XML1": q.xml1()}), prolog=prolog).replace(
        b"<NGAYLAP>", b"<NGAYLAP>&e9;"
    )
    tracemalloc.start()
    try:
        entry = only_entry(run(tmp_path, data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entry.reason is R.HOSTILE_XML
    assert peak < 16 << 20  # 10^9 "lol"s would be 3 GB


def test_entity_expansion_in_an_inner_table_is_refused(tmp_path: Path) -> None:
    inner = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        b"<TONG_HOP>&b;</TONG_HOP>"
    )
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": inner}))))
    assert entry.reason is R.HOSTILE_XML  # XML1 is read in pass 1: still refused


def test_deep_nesting_of_the_envelope_is_refused(tmp_path: Path) -> None:
    data = q.envelope(q.hoso({"XML1": q.xml1()})).replace(
        b"<NGAYLAP>", b"<NGAYLAP>" + b"<a>" * 100_000 + b"</a>" * 100_000
    )
    entry = only_entry(run(tmp_path, data))
    assert (entry.scope, entry.reason) == (QuarantineScope.FILE, R.HOSTILE_XML)
    assert "deeper" in entry.detail


def test_deep_nesting_of_an_inner_table_is_refused(tmp_path: Path) -> None:
    inner = (
        b"<CHITIEU_CHITIET_THUOC>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</CHITIEU_CHITIET_THUOC>"
    )
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": q.xml1(), "XML2": inner}))))
    assert entry.reason is R.HOSTILE_XML


def test_a_huge_text_node_outside_any_hoso_is_streamed_past(tmp_path: Path) -> None:
    # 64 MB in an envelope field the reader does not keep: memory stays at a chunk.
    data = q.envelope(q.hoso({"XML1": q.xml1()})).replace(
        b"<CHUKYDONVI>", b"<CHUKYDONVI>" + b"A" * (64 << 20)
    )
    tracemalloc.start()
    try:
        items = run(tmp_path, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [type(i) for i in items] == [EncounterBundle]
    assert peak < 24 << 20


def test_a_huge_base64_content_is_refused_without_holding_it(tmp_path: Path) -> None:
    big = b"QUFB" * (4 << 20)  # 16 MB of Base64 in one NOIDUNGFILE, limit 1 MB per HOSO
    data = q.envelope(q.hoso({"XML1": q.xml1(), "XML2": b""}, raw={"XML2": big}))
    tracemalloc.start()
    try:
        entry = only_entry(run(tmp_path, data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entry.reason is R.OVERSIZED_XML
    assert len(entry.raw_line) <= 64 << 10
    assert peak < 24 << 20


def test_a_huge_text_node_in_a_table_is_refused(tmp_path: Path) -> None:
    inner = q.xml1(CHAN_DOAN_RV="x" * (65 << 10))
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": inner}))))
    assert entry.reason is R.OVERSIZED_XML


def test_invalid_base64_is_refused(tmp_path: Path) -> None:
    data = q.envelope(q.hoso({"XML1": q.xml1(), "XML2": b""}, raw={"XML2": b"@@not*base64@@"}))
    entry = only_entry(run(tmp_path, data))
    assert entry.reason is R.INVALID_BASE64
    assert "Base64" in entry.detail


@pytest.mark.parametrize(
    "table",
    [
        q.xml1().decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"),
        q.xml1().replace(b'encoding="utf-8"', b'encoding="windows-1258"'),
        q.xml1().replace("Ánh".encode(), b"\xc1nh"),  # Latin-1 bytes in a UTF-8 table
    ],
    ids=["utf-16", "declared-windows-1258", "invalid-utf-8"],
)
def test_a_table_in_another_encoding_is_refused(tmp_path: Path, table: bytes) -> None:
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": table}))))
    assert entry.reason is R.MALFORMED_XML


def test_an_envelope_in_another_encoding_is_refused(tmp_path: Path) -> None:
    text = q.envelope(q.hoso({"XML1": q.xml1()})).decode()
    data = text.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    entry = only_entry(run(tmp_path, data))
    assert (entry.scope, entry.reason) == (QuarantineScope.FILE, R.MALFORMED_XML)


def test_a_truncated_file_holds_back_every_hoso_of_it(tmp_path: Path) -> None:
    good = q.hoso({"XML1": q.xml1()})
    other = q.hoso({"XML1": q.xml1(MA_LK="LK0002")})
    entry = only_entry(run(tmp_path, q.envelope(good, other)[:-30]))
    assert (entry.scope, entry.reason) == (QuarantineScope.FILE, R.MALFORMED_XML)


def test_a_count_that_disagrees_holds_the_file_back(tmp_path: Path) -> None:
    data = q.envelope(q.hoso({"XML1": q.xml1()})).replace(b">1</SOLUONGHOSO>", b">2</SOLUONGHOSO>")
    entry = only_entry(run(tmp_path, data))
    assert entry.scope is QuarantineScope.FILE
    assert "SOLUONGHOSO" in entry.detail


def test_no_phi_in_the_reasons(tmp_path: Path) -> None:
    bad = q.xml1(MA_BENH_CHINH="E99", HO_TEN="Trần Văn Bí Mật")
    entry = only_entry(run(tmp_path, q.envelope(q.hoso({"XML1": bad}))))
    assert entry.reason is R.INVALID_ICD10
    assert "E99" not in entry.detail
    assert "Bí Mật" not in entry.detail
    assert "Bí Mật" not in repr(entry)
