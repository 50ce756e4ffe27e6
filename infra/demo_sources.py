"""`make demo`, the sources beside FHIR: a day of the QĐ 130 XML every Vietnamese HIS already
sends to social insurance, archived by the same nightly run and shown record by record."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date
from typing import Any

import click

from archive import wiring
from archive.catalog import Catalog
from archive.core.atomic import write_private
from archive.render import extract_embedded_data
from archive.seal import ObjectIdentity
from archive.store import withdraw
from infra.sample.qd130 import write_qd130_export
from infra.settings import AppSettings as Settings

QD130_ENCOUNTERS = 40


def show_qd130(settings: Settings, day: date) -> dict[str, Any]:
    """Write a QĐ 130 day from the HIS, archive it with the nightly flow, show one record; the
    run's summary is returned for the demo's table."""
    from flows.nightly import nightly_archive
    from flows.outcome import summary_of

    export = settings.exports_dir / f"demo-qd130-{secrets.token_hex(3)}"
    sample = write_qd130_export(
        export,
        encounters=QD130_ENCOUNTERS,
        seed=secrets.randbits(31),
        day=day,
        tz=settings.archive.timezone,
    )
    planted = len(sample.held) + len(sample.files)
    click.echo(
        f"   {export}: a GIAMDINHHS day file and single-HOSO files ({sample.size_bytes:,} bytes), "
        f"{len(sample.archived)} visits discharged {day}, {planted} planted bad records or files"
    )
    click.echo("   the same nightly run, pointed at the folder; it recognises the XML by itself")
    result = summary_of(nightly_archive, source=str(export))
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result["quarantined"].items()))
    click.echo(
        f"   archived {result['archived']}, quarantined {result['quarantined_total']}"
        + (f" ({reasons})" if reasons else "")
    )
    _show_original(settings, result["run_id"])
    return result


def _show_original(settings: Settings, run_id: str) -> None:
    """One QĐ 130 record: the hospital's own HOSO XML travels inside the signed PDF unchanged."""
    catalog = Catalog.open(settings.catalog_dir)
    rows = [r for r in catalog.rows().to_pylist() if r["run_id"] == run_id]
    if not rows:
        click.echo("   (this run archived nothing new)")
        return
    row = rows[0]
    pdf = withdraw(
        identity=ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"]),
        version_id=row["version_id"],
        store=wiring.open_store(settings),
        keys=wiring.open_keyring(settings),
        settings=settings.seal,
    )
    original = extract_embedded_data(pdf)
    out = settings.data_dir / "demo" / f"record-{row['encounter_id']}.hoso.xml"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_private(out, original)
    click.echo(
        f"   record MA_LK {row['encounter_id']}: its PDF embeds the HIS's HOSO as sent "
        f"({len(original):,} bytes, SHA-256 {hashlib.sha256(original).hexdigest()[:16]}…), "
        f"saved to {out}"
    )
