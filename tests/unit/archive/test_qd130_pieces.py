"""A large envelope read as byte ranges on several cores answers what the whole reading answers.

The ranges are a fast path only (:mod:`archive.sources.qd130.pieces`): each test sets them beside
:func:`~archive.sources.qd130.index.index_file` on the same bytes, at several range sizes, for a
realistic day with its planted bad HOSO, and for files built to fool a byte search: a HOSO hidden
in a comment where a range would begin, ``<HOSO`` in a comment that throws the numbering off,
breakage and hostility in a middle range, a facility named late, a count that disagrees.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from archive.sources import EncounterBundle, QuarantineReason, Window
from archive.sources.model import FacilitySignature
from archive.sources.qd130 import collect
from archive.sources.qd130 import pieces as pieces_module
from archive.sources.qd130.build import Place
from archive.sources.qd130.collect import DEFAULT_LIMITS
from archive.sources.qd130.index import FileIndex, Found, index_file
from archive.sources.qd130.pieces import index_piece, merge, plan
from archive.sources.qd130.places import Places
from archive.sources.qd130.signature import FacilityTrust
from infra.sample.qd130 import write_qd130_export

R = QuarantineReason
DAY = date(2025, 3, 10)
WINDOW = Window.for_day(DAY, "Asia/Ho_Chi_Minh")
TRUST = FacilityTrust()
SIZES = (3_000, 11_000, 40_000)  # bytes per range: a HOSO is about 7 kB


@pytest.fixture(scope="module")
def day_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("qd130-pieces") / "day"
    write_qd130_export(out, encounters=60, seed=3, day=DAY, tz="Asia/Ho_Chi_Minh", bad=True)
    (found,) = out.glob("*_GIAMDINHHS.xml")
    head, blocks, tail = _blocks(found.read_bytes())
    # Refused in pass 1 too (the planted HOSO are refused in pass 2): XML1 not Base64, no XML1.
    blocks[5] = blocks[5].replace(b"XML1</LOAIHOSO><NOIDUNGFILE>", b"XML1</LOAIHOSO><NOIDUNGFILE>@")
    blocks[9] = blocks[9].replace(b"XML1</LOAIHOSO>", b"XML0</LOAIHOSO>")
    return head + b"\n".join(blocks) + tail


def _by_pieces(path: Path, size: int) -> tuple[FileIndex | None, int]:
    ranges = plan(path, path.stat().st_size, piece_bytes=size)
    assert len(ranges) >= 2
    done = [index_piece(r, WINDOW, DEFAULT_LIMITS) for r in ranges]
    merged = merge(path, iter(done), DEFAULT_LIMITS, TRUST)
    if merged is None:
        return None, len(ranges)
    index, rows = merged
    assert not index.found
    return replace(index, found=tuple(rows.found())), len(ranges)


def _same_as_whole(path: Path, *, merges: bool) -> FileIndex:
    whole = index_file(path, WINDOW, DEFAULT_LIMITS, TRUST)
    for size in SIZES:
        merged, _ = _by_pieces(path, size)
        if merges:
            assert merged == whole, size
        else:  # the fast path gives up; the caller then reads the file whole
            assert merged is None, size
    return whole


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "20250310_17001_GIAMDINHHS.xml"
    path.write_bytes(data)
    return path


def _blocks(day_file: bytes) -> tuple[bytes, list[bytes], bytes]:
    head, rest = day_file.split(b"<DANHSACHHOSO>\n", 1)
    body, tail = rest.split(b"\n</DANHSACHHOSO>", 1)
    return head + b"<DANHSACHHOSO>\n", body.split(b"\n"), b"\n</DANHSACHHOSO>" + tail


def test_a_day_read_in_ranges_is_the_day_read_whole(day_file: bytes, tmp_path: Path) -> None:
    whole = _same_as_whole(_write(tmp_path, day_file), merges=True)
    assert len(whole.found) > 40
    assert whole.refusals
    assert whole.refused is None
    assert {f.facility for f in whole.found} == {"17001"}
    _, n = _by_pieces(_write(tmp_path, day_file), SIZES[0])
    assert n > 50  # most ranges hold a HOSO or two: every kind of cut is met


def test_a_hoso_hidden_in_a_comment_where_a_range_begins_is_not_collected(
    day_file: bytes, tmp_path: Path
) -> None:
    """Before every HOSO but the first, a comment holding a copy of another HOSO: the byte
    search cuts inside the comments (ranges smaller than a HOSO hold one ``<HOSO`` each, so the
    count agrees), the whole reading never sees them."""
    head, blocks, tail = _blocks(day_file)
    head = re.sub(rb"<SOLUONGHOSO>\d+</SOLUONGHOSO>", b"", head)  # the count is optional
    fake = blocks[3].replace(b"<HOSO>", b"<HOSO >", 1)
    hidden = blocks[:1] + [b"<!-- " + fake + b" -->\n" + block for block in blocks[1:]]
    path = _write(tmp_path, head + b"\n".join(hidden) + tail)
    whole = _same_as_whole(path, merges=False)
    (tmp_path / "clean").mkdir()
    clean = index_file(_write(tmp_path / "clean", day_file), WINDOW, DEFAULT_LIMITS, TRUST)
    assert [f.key for f in whole.found] == [f.key for f in clean.found]


def test_hoso_in_a_comment_does_not_shift_the_numbering(day_file: bytes, tmp_path: Path) -> None:
    head, blocks, tail = _blocks(day_file)
    head = re.sub(rb"<SOLUONGHOSO>\d+</SOLUONGHOSO>", b"", head)
    blocks.insert(2, b"<!-- <HOSO> was here -->")
    whole = _same_as_whole(_write(tmp_path, head + b"\n".join(blocks) + tail), merges=False)
    assert [r.ordinal for r in whole.refusals] == [6, 10]  # the comment is no HOSO


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda b: b.replace(b"</FILEHOSO>", b"</FILEHOS>", 1), R.MALFORMED_XML),
        (lambda b: b.replace(b"<FILEHOSO>", b"<A>" * 20 + b"<FILEHOSO>", 1), R.HOSTILE_XML),
        (lambda b: b.replace(b"<LOAIHOSO>", b"<LOAIHOSO>&ext;", 1), R.MALFORMED_XML),
        (lambda b: b.replace(b"<FILEHOSO>", b"<![CDATA[<HOSO>", 1), R.MALFORMED_XML),
    ],
    ids=["mismatched-tag", "deep", "undeclared-entity", "open-cdata"],
)
def test_a_broken_middle_range_is_refused_in_the_whole_readings_words(
    day_file: bytes, tmp_path: Path, spoil: object, reason: R
) -> None:
    head, blocks, tail = _blocks(day_file)
    middle = len(blocks) // 2
    blocks[middle] = spoil(blocks[middle])  # type: ignore[operator]
    whole = _same_as_whole(_write(tmp_path, head + b"\n".join(blocks) + tail), merges=False)
    assert whole.refused is not None
    assert whole.refused[0] == reason


def test_a_doctype_or_a_wrong_count_is_refused_as_before(day_file: bytes, tmp_path: Path) -> None:
    doctype = day_file.replace(b"?>\n", b'?>\n<!DOCTYPE GIAMDINHHS SYSTEM "http://x/">\n', 1)
    whole = _same_as_whole(_write(tmp_path, doctype), merges=False)
    assert whole.refused is not None
    assert whole.refused[0] == R.HOSTILE_XML
    head, blocks, tail = _blocks(day_file)
    extra = head + b"\n".join([*blocks, blocks[0].replace(b"<HOSO>", b"<HOSO >")]) + tail
    whole = _same_as_whole(_write(tmp_path, extra), merges=False)
    assert whole.refused is not None
    assert "SOLUONGHOSO" in whole.refused[1]


def test_a_facility_named_late_and_a_second_list_are_read_as_whole(
    day_file: bytes, tmp_path: Path
) -> None:
    """MACSKCB after the first list (its HOSO have none), then a second list under it."""
    head, blocks, tail = _blocks(day_file)
    head = head.replace(b"<MACSKCB>17001</MACSKCB>", b"")
    half = len(blocks) // 2
    second = (
        b"\n</DANHSACHHOSO></THONGTINHOSO><THONGTINDONVI><MACSKCB>79002</MACSKCB></THONGTINDONVI>"
        b"<THONGTINHOSO><DANHSACHHOSO>\n"
    )
    data = head + b"\n".join(blocks[:half]) + second + b"\n".join(blocks[half:]) + tail
    whole = _same_as_whole(_write(tmp_path, data), merges=True)
    assert {f.facility for f in whole.found} == {None, "79002"}


def test_the_pool_reads_a_large_envelope_in_ranges_and_yields_the_same(
    day_file: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "day").mkdir()
    _write(tmp_path / "day", day_file)
    limits = DEFAULT_LIMITS.__class__(
        max_hoso_bytes=DEFAULT_LIMITS.max_hoso_bytes,
        max_table_bytes=DEFAULT_LIMITS.max_table_bytes,
        max_text_chars=DEFAULT_LIMITS.max_text_chars,
        max_signed_file_bytes=64 << 10,
    )
    monkeypatch.setattr(pieces_module, "PIECE_BYTES", 40_000)
    planned: list[int] = []
    real_plan = plan

    def counted(path: Path, size: int, **kw: int) -> list[pieces_module.Piece]:
        found = real_plan(path, size, **kw)
        planned.append(len(found))
        return found

    monkeypatch.setattr(sys.modules["archive.sources.qd130.collect"], "plan", counted)
    alone = list(collect(tmp_path / "day", window=WINDOW, limits=limits))
    pooled = list(
        collect(tmp_path / "day", window=WINDOW, limits=limits, workers=2, pool_min_bytes=0)
    )
    assert planned
    assert planned[0] > 5
    assert [_item(i) for i in pooled] == [_item(i) for i in alone]


def _item(item: object) -> object:
    if isinstance(item, EncounterBundle):
        return (item.encounter_id, item.canonical, item.facility_signature)
    return item


def test_the_compact_index_gives_back_each_place_as_it_was_found(tmp_path: Path) -> None:
    signature = FacilitySignature(status="absent")
    signed = FacilitySignature(status="valid", signer_sha256="ab" * 32)
    day, single = tmp_path / "day.xml", tmp_path / "HOSO_1.xml"
    rows = [
        Found("K2", 1, 100, 5_000, "17001"),
        Found("K1", 2, 5_010, 9_000, None),
        Found("K2", 3, 9_010, 3 << 32, "79002"),  # a second HOSO with K2; beyond 4 GiB
    ]
    places = Places()
    places.add(FileIndex(day, found=tuple(rows), signature=signature))
    places.add(FileIndex(tmp_path / "empty.xml", refusals=()))  # nothing found: nothing kept
    places.add(
        FileIndex(single, found=(Found("K2", 1, 0, 700, "17001"),), whole=True, signature=signed)
    )
    assert len(places) == 2
    assert places.in_order() == ["K1", "K2"]
    assert places.places("K1") == [Place(day, 2, 5_010, 9_000, None, False, signature)]
    assert places.places("K2") == [
        Place(day, 1, 100, 5_000, "17001", False, signature),
        Place(day, 3, 9_010, 3 << 32, "79002", False, signature),
        Place(single, 1, 0, 700, "17001", True, signed),
    ]
