"""`make demo`, the sources beside FHIR: a day of the QĐ 130 XML every Vietnamese HIS already
sends to social insurance, archived by the same nightly run, and a shelf of paper records from a
digitisation campaign (OCR, the conversion mark, then signed and locked like the others)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from archive import wiring
from archive.catalog import Catalog
from archive.core.atomic import write_private
from archive.intake import mark_problem, scanned_row
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity
from archive.store import ObjectStore, withdraw
from infra.intake import run_intake
from infra.sample.qd130 import write_qd130_export
from infra.sample.qd130_records import FACILITY
from infra.sample.qd130_signing import CERT_FILE, dev_facility
from infra.sample.scans import write_sample_scans
from infra.settings import AppSettings as Settings

QD130_ENCOUNTERS = 40
PAPER_RECORDS = 3
FACILITY_CERTS_ENV = "EMR_ARCHIVE_ARCHIVE__FACILITY_CERTS"


def show_qd130(
    settings: Settings, day: date, *, encounters: int = QD130_ENCOUNTERS
) -> dict[str, Any]:
    """Write a QĐ 130 day from the HIS, archive it with the nightly flow, show one record and
    one facility signature (CHUKYDONVI); the run's summary is returned for the demo's table.

    The single-HOSO files are signed by a development facility whose key is generated under the
    data directory (0600); its certificate is the facility certificate of this run only."""
    from flows.nightly import nightly_archive
    from flows.outcome import summary_of

    export = settings.exports_dir / f"demo-qd130-{secrets.token_hex(3)}"
    facility = dev_facility(settings.data_dir / "qd130-dev-facility")
    sample = write_qd130_export(
        export,
        encounters=encounters,
        seed=secrets.randbits(31),
        day=day,
        tz=settings.archive.timezone,
        facility=facility,
    )
    planted = len(sample.held) + len(sample.files)
    click.echo(
        f"   {export}: a GIAMDINHHS day file and single-HOSO files ({sample.size_bytes:,} bytes), "
        f"{len(sample.archived)} visits discharged {day}, {planted} planted bad records or files"
    )
    click.echo("   the same nightly run, pointed at the folder; it recognises the XML by itself")
    certs = settings.data_dir / "qd130-dev-facility" / CERT_FILE
    with _environment(FACILITY_CERTS_ENV, str(certs)):
        result = summary_of(nightly_archive, source=str(export))
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result["quarantined"].items()))
    click.echo(
        f"   archived {result['archived']}, quarantined {result['quarantined_total']}"
        + (f" ({reasons})" if reasons else "")
    )
    _show_original(settings, result["run_id"])
    _show_facility_signature(settings, result["run_id"], facility.sha256)
    return result


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the flow runs inside (they read their settings then)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _show_facility_signature(settings: Settings, run_id: str, facility_sha256: str) -> None:
    """One record whose file the facility signed, and the planted file whose signature broke."""
    rows = Catalog.open(settings.catalog_dir).rows().to_pylist()
    signed = [r for r in rows if r["run_id"] == run_id and r["facility_signature"] == "valid"]
    if signed:
        row = signed[0]
        who = (
            "the development facility" if row["facility_signer_sha256"] == facility_sha256 else "?"
        )
        click.echo(
            f"   record MA_LK {row['encounter_id']}: facility_signature={row['facility_signature']}"
            f" (CHUKYDONVI), signer certificate SHA-256 {row['facility_signer_sha256']} ({who}, "
            f"from {FACILITY_CERTS_ENV})"
        )
    else:
        click.echo("   (no record of this run came from a file the facility signed)")
    index = settings.data_dir / "quarantine" / f"{run_id}.jsonl"
    entries = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines()]
    for entry in entries:
        if entry["reason"] == "facility-signature-invalid":
            click.echo(
                f"   {entry['source_file']}, changed after the facility signed it: quarantined "
                f"{entry['reason']} ({entry['scope']}), none of its HOSO archived"
            )


def show_scans(settings: Settings) -> dict[str, Any]:
    """Three paper records scanned, OCR'd, marked as converted, signed and locked; one shown."""
    out = settings.exports_dir / f"demo-paper-{secrets.token_hex(3)}"
    shelf = write_sample_scans(
        out, records=PAPER_RECORDS, seed=secrets.randbits(31), facility=FACILITY
    )
    click.echo(
        f"   {shelf.scan_dir}: {shelf.records} paper records ({shelf.pages} pages, TIFF and JPEG) "
        f"listed in {shelf.manifest.name} with who converted them"
    )
    summary = run_intake(settings, shelf.scan_dir, shelf.manifest).to_dict()
    click.echo(
        f"   archived {summary['archived']}, quarantined {summary['quarantined_total']}, "
        f"failed {summary['failed_total']} (OCR in Vietnamese and English, PDF/A-3b)"
    )
    found = first_record(settings, summary["run_id"])
    if found is not None:
        row, pdf = found
        scan = scanned_row(extract_embedded_data(pdf)) or {}
        problem = mark_problem(pdf, scan) if scan else "no scan manifest embedded"
        out_pdf = settings.data_dir / "demo" / f"{row['encounter_id']}.pdf"
        save_private(out_pdf, pdf)
        click.echo(
            f"   {out_pdf}: record {scan.get('record_number', '?')}, converted by "
            f'{scan.get("converted_by", "?")}; the mark "converted from paper" is '
            + ("on every page and in the XMP" if problem is None else f"MISSING ({problem})")
        )
    return summary


def first_record(
    settings: Settings, run_id: str, *, store: ObjectStore | None = None
) -> tuple[dict[str, Any], bytes] | None:
    """The run's first catalogued record and its PDF, withdrawn (decrypted) from the store."""
    catalog = Catalog.open(settings.catalog_dir)
    rows = [r for r in catalog.rows().to_pylist() if r["run_id"] == run_id]
    if not rows:
        click.echo("   (this run archived nothing new)")
        return None
    row = rows[0]
    pdf = withdraw(
        identity=ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"]),
        version_id=row["version_id"],
        store=store or wiring.open_store(settings),
        keys=wiring.open_keyring(settings),
        settings=settings.seal,
    )
    return row, pdf


def _show_original(settings: Settings, run_id: str) -> None:
    """One QĐ 130 record: the hospital's own HOSO XML travels inside the signed PDF unchanged."""
    found = first_record(settings, run_id)
    if found is None:
        return
    row, pdf = found
    original = extract_embedded_data(pdf)
    out = settings.data_dir / "demo" / f"record-{row['encounter_id']}.hoso.xml"
    save_private(out, original)
    click.echo(
        f"   record MA_LK {row['encounter_id']}: its PDF embeds the HIS's HOSO as sent "
        f"({len(original):,} bytes, SHA-256 {hashlib.sha256(original).hexdigest()[:16]}…), "
        f"saved to {out}"
    )


def save_private(path: Path, data: bytes) -> None:
    """``data`` to ``path`` (0600, atomic), its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, data)
