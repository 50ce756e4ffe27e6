"""The scan manifest as a records department really writes it: Excel's BOM and CRLF, columns
missing, doubled or in excess, rows listed twice, bad dates, Vietnamese in NFD, spreadsheet
formulas, paths out of the scan directory. Every bad row is a :class:`RowProblem` naming the
column, never its value; a bad file as a whole is a :class:`SourceError`."""

from __future__ import annotations

import unicodedata
from zoneinfo import ZoneInfo

import pytest

from archive.core.errors import SourceError
from archive.intake import RowProblem, ScanRow, read_manifest

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HEADER = "file,record_number,patient_id,facility,admitted,discharged,converted_by"
GOOD = "HS-1.tiff,HS-1,BN-1,79001,2020-03-01,2020-03-12,Trần Văn Bình"


def _read(*lines: str, header: str = HEADER, eol: str = "\n", bom: bool = False) -> list[object]:
    data = eol.join((header, *lines)).encode() + eol.encode()
    return list(read_manifest((b"\xef\xbb\xbf" if bom else b"") + data, tz=TZ))


def _problem(*lines: str, header: str = HEADER) -> RowProblem:
    items = _read(*lines, header=header)
    assert len(items) == 1
    assert isinstance(items[0], RowProblem), items[0]
    return items[0]


@pytest.mark.parametrize(("eol", "bom"), [("\n", False), ("\r\n", True), ("\r\n", False)])
def test_excel_bom_and_crlf_read_like_plain_utf8(eol: str, bom: bool) -> None:
    [row] = _read(GOOD, eol=eol, bom=bom)
    assert isinstance(row, ScanRow)
    assert (row.files, row.record_number, row.line) == (("HS-1.tiff",), "HS-1", 2)
    assert row.converted_by == "Trần Văn Bình"  # no stray \r kept in the last column
    assert row.admitted_at.tzinfo is TZ


def test_a_missing_required_column_refuses_the_manifest_naming_it() -> None:
    with pytest.raises(SourceError, match="converted_by"):
        _read("HS-1.tiff,HS-1,BN-1,79001,2020-03-01,2020-03-12", header=HEADER.rsplit(",", 1)[0])


def test_a_column_named_twice_refuses_the_manifest() -> None:
    with pytest.raises(SourceError, match="patient_id twice"):
        _read(GOOD + ",BN-2", header=HEADER + ",patient_id")


def test_an_unknown_extra_column_is_ignored() -> None:
    [row] = _read(GOOD + ",ghi chú", header=HEADER + ",note")
    assert isinstance(row, ScanRow)


def test_a_row_with_more_cells_than_the_header_is_refused() -> None:
    # An unquoted comma in the name: "Trần, Văn Bình" shifts a cell past the header.
    problem = _problem(GOOD.replace("Trần Văn", "Trần, Văn"))
    assert problem.detail == "the row has more cells than the header"
    assert "Bình".encode() in problem.raw  # the sealed entry keeps the whole row, extra cells too
    assert "Bình" not in repr(problem)


def test_a_row_with_fewer_cells_names_the_empty_required_column() -> None:
    assert _problem(GOOD.rsplit(",", 1)[0]).detail == "converted_by: empty"


def test_a_record_listed_twice_keeps_the_first_and_refuses_the_second() -> None:
    first, second = _read(GOOD, GOOD.replace("HS-1.tiff", "HS-1b.tiff"))
    assert isinstance(first, ScanRow)
    assert isinstance(second, RowProblem)
    assert second.detail == "record_number: listed twice for this facility"
    assert second.files == ("HS-1b.tiff",)  # so the file is not also reported as unlisted


@pytest.mark.parametrize(
    ("admitted", "discharged", "detail"),
    [
        ("2015-13-01", "2015-05-02", "admitted: not a date"),
        ("01/05/2015", "2015-05-02", "admitted: not a date"),
        ("2015-05-01", "2015-02-30", "discharged: not a date"),
        ("2015-05-01", "2015-04-30", "discharged: before admitted"),
        ("2015-05-01", "", "discharged: empty"),
    ],
)
def test_bad_dates_are_refused_by_column(admitted: str, discharged: str, detail: str) -> None:
    line = f"HS-1.tiff,HS-1,BN-1,79001,{admitted},{discharged},Bình"
    assert _problem(line).detail.startswith(detail)


def test_a_date_with_an_offset_keeps_it_and_a_bare_one_is_local_midnight() -> None:
    [row] = _read("HS-1.tiff,HS-1,BN-1,79001,2020-03-01T08:30:00+00:00,2020-03-12,Bình")
    assert isinstance(row, ScanRow)
    assert row.admitted_at.utcoffset() is not None
    assert row.admitted_at.hour == 8
    assert row.discharged_at.utcoffset() == row.discharged_at.replace(tzinfo=TZ).utcoffset()


def test_vietnamese_in_nfd_is_stored_nfc() -> None:
    nfd = unicodedata.normalize("NFD", GOOD)
    assert nfd != GOOD
    [row] = _read(nfd)
    assert isinstance(row, ScanRow)
    assert row.converted_by == unicodedata.normalize("NFC", "Trần Văn Bình")
    assert row.as_json()["converted_by"] == "Trần Văn Bình"


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("HS-1.tiff,HS-1,BN-1,79001,2020-03-01,2020-03-12,=cmd|' /C calc'!A0", "converted_by"),
        ("HS-1.tiff,HS-1,BN-1,79001,2020-03-01,2020-03-12,@SUM(A1)", "converted_by"),
        ("HS-1.tiff,HS-1,=1+1,79001,2020-03-01,2020-03-12,Bình", "patient_id"),
        ("HS-1.tiff,+HS-1,BN-1,79001,2020-03-01,2020-03-12,Bình", "record_number"),
    ],
)
def test_a_spreadsheet_formula_is_refused(line: str, detail: str) -> None:
    problem = _problem(line)
    assert problem.detail.startswith(f"{detail}:")
    assert "cmd" not in problem.detail
    assert "SUM" not in problem.detail


@pytest.mark.parametrize(
    "name",
    ["../HS-1.tiff", "/etc/passwd", "sub/HS-1.tiff", "..\\HS-1.tiff", ".hidden.tiff", ".."],
)
def test_a_file_outside_the_scan_directory_is_refused(name: str) -> None:
    problem = _problem(GOOD.replace("HS-1.tiff", name, 1))
    assert problem.detail == "file: names a path outside the scan directory"


@pytest.mark.parametrize(
    ("old", "new", "detail"),
    [
        ("Trần Văn Bình", "Trần\x07Bình", "converted_by: too long or holds control characters"),
        ("Trần Văn Bình", "x" * 513, "converted_by: too long or holds control characters"),
        ("BN-1", "BN 1", "patient_id: not an identifier"),
        ("79001", "7900\u0661", "facility: not an identifier"),  # an Arabic-Indic digit
    ],
)
def test_control_characters_overlong_and_lookalike_values_are_refused(
    old: str, new: str, detail: str
) -> None:
    assert _problem(GOOD.replace(old, new)).detail.startswith(detail)


def test_a_line_break_inside_a_quoted_cell_is_refused() -> None:
    assert _problem(GOOD.replace("Trần Văn Bình", '"Trần\nBình"')).detail.startswith(
        "converted_by: too long or holds control characters"
    )


def test_a_manifest_that_is_not_utf8_is_refused_as_a_whole() -> None:
    data = (HEADER + "\n" + GOOD + "\n").encode("cp1258", errors="replace")
    with pytest.raises(SourceError, match="not UTF-8"):
        list(read_manifest(data.replace(b"?", b"\xd2"), tz=TZ))


def test_a_problem_never_shows_the_values() -> None:
    problem = _problem(GOOD.replace("2020-03-01", "2020-99-01"))
    assert "BN-1" not in problem.detail
    assert "Trần" not in repr(problem)
