"""The demo's lasting proof: one record judged 30 years ahead, before and after a renewal.

The nightly run gave every record an RFC 4998 evidence record on one timestamp of the
development TSA, whose certificate ends in under ten years. Judged as of 30 years ahead that
proof has lapsed (``evidence.expired``: a renewal was missed). The renewal job then stamps every
tree's proof once more, with the development *archive* TSA (a certificate valid 45 years) — one
TSA call for all trees — and the same record, judged as of the same date, is proven: the
evidence record shows the PDF existed while its signer's and TSA's certificates were valid, and
each later timestamp holds at the time of the next.

A real archive renews in the last year of a TSA certificate (``renew_before_days`` = 365); the
demo widens the horizon to ten years so that today's trees are due today. The files the check
reads are written beside the demo's other output, so anyone can repeat it:
``emr-archive verify-file PDF --at +30y --evidence ERS``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from archive import wiring
from archive.pipeline.evidence_current import current_evidence
from archive.pipeline.evidence_wiring import renew_evidence
from archive.sign import captured_library_log
from archive.store import SealedStore
from infra.demo_sources import first_record, save_private
from infra.settings import AppSettings as Settings
from verification.as_of import verify_document_as_of
from verification.results import Status, bottom_line
from verification.settings import weak_table

YEARS_AHEAD = 30
_DEMO_HORIZON_DAYS = 3650  # the development TSA's certificate ends within it: due today


def show_preservation(settings: Settings, run_id: str) -> None:
    found = first_record(settings, run_id)
    if found is None:
        return
    row, pdf = found
    at = datetime.now(UTC) + timedelta(days=365 * YEARS_AHEAD + YEARS_AHEAD // 4)
    out = settings.data_dir / "demo" / f"record-{row['encounter_id']}"
    save_private(out.with_suffix(".pdf"), pdf)
    before = _evidence(settings, row)
    if before is None:
        click.echo("   this record's evidence is still pending (TSA down?): nothing to judge")
        return
    click.echo(f"   record {row['encounter_id']}, as of {at:%Y-%m-%d} ({YEARS_AHEAD} years ahead):")
    _judge(settings, pdf, before, at, "before any renewal")

    renewal_settings = settings.model_copy(
        update={
            "evidence": settings.evidence.model_copy(
                update={
                    "tsa_url": settings.dev_archive_tsa_url,
                    "renew_before_days": _DEMO_HORIZON_DAYS,
                }
            )
        }
    )
    renewed = renew_evidence(renewal_settings, now=datetime.now(UTC))
    if renewed.failures():  # e.g. the archive TSA did not answer: say so, the demo goes on
        click.echo(f"   the renewal reported: {', '.join(sorted(renewed.failures()))}")
    click.echo(
        f"   evidence renew (archive TSA): {renewed.trees} tree(s), {renewed.records} "
        f"record(s), {renewed.timestamps} TSA call(s), {renewed.written} object(s) written"
    )
    after = _evidence(settings, row)
    assert after is not None  # it existed a moment ago and evidence objects are never deleted
    save_private(out.with_suffix(".ers"), after)
    _judge(settings, pdf, after, at, "after the renewal")
    click.echo(
        f"   repeat it: emr-archive verify-file {out.with_suffix('.pdf')} --at +{YEARS_AHEAD}y "
        f"--evidence {out.with_suffix('.ers')}"
    )


def _evidence(settings: Settings, row: dict[str, Any]) -> bytes | None:
    store = SealedStore(
        wiring.open_store(settings), keys=wiring.open_keyring(settings), settings=settings.seal
    )
    current = current_evidence(store, object_key=row["object_key"], version_id=row["version_id"])
    return None if current is None else current.der


def _judge(settings: Settings, pdf: bytes, evidence: bytes, at: datetime, when: str) -> None:
    # pyHanko logs the lapsed TSA certificate with a traceback; the verdict is the one line
    with captured_library_log():
        results = verify_document_as_of(
            pdf,
            trust=wiring.trust_policy(settings),
            as_of=at,
            evidence=evidence,
            weak=weak_table(settings),
        )
    status = bottom_line(results)
    codes = sorted({r.reason_code for r in results if r.status is not Status.PASSED})
    click.echo(f"   {when:<20} {status.value.upper()} {', '.join(codes)}".rstrip())
