"""A shelf of synthetic paper records for the digitisation campaign: scanned pages and their
manifest, as a records room delivers them (grey TIFF at 150 dpi, a colour JPEG, one record of two
pages). Names and numbers are fictitious; deterministic per seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core
HEADER = "file,record_number,patient_id,facility,admitted,discharged,converted_by,deceased,icd10\n"
_NAMES = ("Nguyễn Thị Hương", "Trần Văn Bình", "Lê Thị Mai", "Phạm Minh Đức", "Hoàng Văn Nam")
_DIAGNOSES = (("J18.9", "Viêm phổi"), ("I10", "Tăng huyết áp"), ("K35.8", "Viêm ruột thừa cấp"))
CONVERTER = "Đỗ Thị Lan (phòng KHTH)"


@dataclass(frozen=True, slots=True)
class SampleShelf:
    scan_dir: Path
    manifest: Path
    records: int
    pages: int


def write_sample_scans(out: Path, *, records: int, seed: int, facility: str) -> SampleShelf:
    """``records`` paper records discharged in 2020-2022 (their retention has not ended, so all
    are archived) under ``out/scans`` with ``out/manifest.csv``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fake data
    scan_dir = out / "scans"
    scan_dir.mkdir(parents=True, exist_ok=True)
    rows, pages = [], 0
    for n in range(1, records + 1):
        name = rng.choice(_NAMES)
        code, diagnosis = rng.choice(_DIAGNOSES)
        admitted = date(2020, 1, 1) + timedelta(days=rng.randrange(0, 900))
        discharged = admitted + timedelta(days=rng.randrange(1, 15))
        number = f"HS-{admitted:%Y}-{n:04d}"
        lines = ["HỒ SƠ BỆNH ÁN", f"Số: {number}", f"Họ và tên: {name}", f"Chẩn đoán: {diagnosis}"]
        files = _write_record(scan_dir, number, lines, two_pages=n % 3 == 0, colour=n % 2 == 0)
        pages += len(files)
        rows.append(
            f"{';'.join(files)},{number},BN-{seed % 10000:04d}{n:03d},{facility},"
            f"{admitted},{discharged},{CONVERTER},,{code}\n"
        )
    manifest = out / "manifest.csv"
    manifest.write_text(HEADER + "".join(rows), encoding="utf-8")
    return SampleShelf(scan_dir, manifest, records, pages)


def _write_record(
    folder: Path, number: str, lines: list[str], *, two_pages: bool, colour: bool
) -> list[str]:
    first = _page(lines)
    if colour:  # a colour scan delivered as JPEG
        name = f"{number}.jpg"
        first.convert("RGB").save(folder / name, dpi=(150, 150), quality=85)
        return [name]
    names = [f"{number}.tiff"]
    first.save(folder / names[0], dpi=(150, 150), compression="tiff_lzw")
    if two_pages:
        names.append(f"{number}-2.tiff")
        _page(["GIẤY RA VIỆN", lines[2]]).save(
            folder / names[1], dpi=(150, 150), compression="tiff_lzw"
        )
    return names


def _page(lines: list[str]) -> Image.Image:
    image = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 44)
    for i, line in enumerate(lines):
        draw.text((100, 150 + 90 * i), line, font=font, fill=0)
    return image
