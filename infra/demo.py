"""`make demo`: the nightly archive on the embedded stack, explained as it runs.

Set-up, stack up, 200 synthetic encounters discharged yesterday, one archive run, a second run
that archives nothing new, a summary, and one archived record decrypted to ``var/demo/`` for a
person to open — with its signature and PDF/A checks, and a delete the store refuses; then
inspector retrieval (demo accounts, a grant, a dossier export, a refusal, the audit trail) and how
to open the web portal.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click

from archive import wiring
from archive.core.errors import LockRefusedError
from archive.render import check_pdfa3b, extract_embedded_data
from archive.sign import validate_pdf_signatures
from infra import prefect_server, stack
from infra.demo_preservation import YEARS_AHEAD, show_preservation
from infra.demo_replica import catch_up, show_second_site, with_replica
from infra.demo_retrieval import show_retrieval
from infra.demo_sources import first_record, save_private, show_qd130, show_scans
from infra.sample.generator import write_sample_export
from infra.settings import AppSettings as Settings

ENCOUNTERS = 200


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def run_demo(settings: Settings) -> None:
    settings = with_replica(settings)  # a throwaway second site, lost and repaired in step 7b
    _step("1. Embedded stack: SeaweedFS (Object Lock), development PKI + TSA, keyring, Prefect")
    for row in stack.up(settings):
        click.echo(f"   {'ok' if row.healthy else 'FAIL'}  {row.name:<12} {row.detail}")
    catch_up(settings)
    prefect_server.apply_environment(settings)
    if settings.signer.dev_token:
        click.echo("   signing key: on the SoftHSM2 token 'emr-archive-dev' (PKCS#11, by key id)")

    _step(f"2. A synthetic FHIR export from the hospital system: {ENCOUNTERS} encounters")
    tz = ZoneInfo(settings.archive.timezone)
    yesterday = datetime.now(tz).date() - timedelta(days=1)
    export = settings.exports_dir / f"demo-{secrets.token_hex(3)}"
    sample = write_sample_export(
        export,
        encounters=ENCOUNTERS,
        seed=secrets.randbits(31),
        day=yesterday,
        tz=settings.archive.timezone,
    )
    bad = sum(sample.bad_counts().values())
    click.echo(
        f"   {export}: {len(sample.in_window)} finished yesterday ({yesterday}), "
        f"{bad} deliberately bad records, the rest other days or still in progress"
    )
    click.echo(
        f"   the nightly run collects the last {settings.archive.lookback_days} days up to "
        "yesterday and skips what is archived: a missed night is caught up by the next"
    )

    from flows.nightly import nightly_archive
    from flows.outcome import summary_of

    _step("3. The nightly archive run (render PDF/A-3b, sign PAdES B-LTA, seal, store, catalog)")
    first = summary_of(nightly_archive, source=str(export))
    _step("4. The same run again: nothing new may be stored")
    second = summary_of(nightly_archive, source=str(export))
    _step("4b. The same day as QĐ 130 XML, as every Vietnamese HIS sends it to social insurance")
    qd130 = show_qd130(settings, yesterday)
    _step("4c. Paper records from a digitisation campaign: OCR, the conversion mark, signed")
    paper = show_scans(settings)
    _step("5. Summary")
    runs = [("first run", first), ("second run", second), ("QĐ 130 run", qd130)]
    _summary([*runs, ("paper intake", paper)])

    _step("6. One archived record, decrypted for a person to open")
    record = _show_record(settings, first["run_id"])

    from flows.verify import verify_archive

    _step("7. Verification: every record present, unchanged, decryptable, signed, PDF/A, locked")
    checked = summary_of(verify_archive, mode="full")
    click.echo(
        f"   {checked['status'].upper()}: {checked['verified']} record(s) verified, "
        f"{checked['renewal_due']} due for timestamp renewal"
    )
    click.echo(f"   report: {checked['report']}")
    _step("7b. The second site: every record at both; the replica lost entirely, then repaired")
    show_second_site(settings)

    _step(f"7c. Lasting proof: a record judged {YEARS_AHEAD} years ahead, before and after renewal")
    show_preservation(settings, first["run_id"])

    _step("8. Inspector retrieval: accounts, a grant, a dossier export, a refusal, the audit log")
    show_retrieval(settings, record)


def _summary(runs: list[tuple[str, dict[str, Any]]]) -> None:
    labels = [
        ("archived (new)", "archived"),
        ("already archived", "already_archived"),
        ("amended (new version)", "amended"),
        ("adopted after a crash", "adopted"),
        ("quarantined", "quarantined_total"),
        ("  new this run", "quarantine_new"),
        ("failed (next run)", "failed_total"),
        ("seconds", "duration_s"),
        ("records / s", "throughput_per_s"),
    ]
    click.echo(f"   {'':<24}" + "".join(f"{name:>14}" for name, _ in runs))
    for label, key in labels:
        values = "".join(f"{_fmt(result[key]):>14}" for _, result in runs)
        click.echo(f"   {label:<24}{values}")
    reasons = runs[0][1]["quarantined"]
    if reasons:
        click.echo(
            "   quarantine reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
        )


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _show_record(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """Show one record of the run and return its catalog row (None: the run archived none)."""
    store = wiring.open_store(settings)
    found = first_record(settings, run_id, store=store)
    if found is None:
        return None
    row, pdf = found
    out_dir = settings.data_dir / "demo"
    out = out_dir / f"record-{row['encounter_id']}.pdf"
    save_private(out, pdf)
    save_private(out.with_suffix(".fhir.json"), extract_embedded_data(pdf))
    report = validate_pdf_signatures(pdf, trust=wiring.trust_policy(settings))
    pdfa = check_pdfa3b(pdf)
    head = store.head(row["object_key"], version_id=row["version_id"])
    click.echo(f"   {out}  ({len(pdf):,} bytes; embedded FHIR bundle beside it)")
    click.echo(
        f"   retention class {row['retention_class']}, locked (COMPLIANCE) until "
        f"{_local(head.lock.retain_until, settings):%Y-%m-%d %H:%M} (local time)"
    )
    click.echo(f"   signature: {report.reason_code} ({report.reason})")
    for check in report.checks[:1]:  # the signature; the rest are document timestamps
        click.echo(f"   signed by {check.signer_subject} (SHA-256 {check.signer_cert_sha256})")
    click.echo(f"   PDF/A-3b structure: {'passed' if pdfa.passed else 'FAILED'}")
    try:
        store.delete_version(row["object_key"], version_id=row["version_id"])
        click.secho("   the store DELETED a locked record: this bucket is not WORM", fg="red")
    except LockRefusedError:
        click.echo("   deleting it: refused by the store (COMPLIANCE lock)")
    return dict(row)


def _local(moment: datetime | None, settings: Settings) -> datetime:
    if moment is None:  # a locked record always has a date; say so rather than crash
        raise ValueError("the record has no retain-until date")
    return moment.astimezone(ZoneInfo(settings.archive.timezone))


def closing_hint(settings: Settings) -> None:
    ui = settings.prefect_api_url.removesuffix("/api")
    click.echo(f"\nRun history: {ui} (Prefect UI).  The stack keeps running for you to explore;")
    click.echo("`.venv/bin/emr-archive stack status` shows it, `... stack down` stops it.")
