"""``emr-archive search | retrieve``: find archived records and export a dossier, on
:class:`retrieval.service.Retrieval` (the same API the portal uses).

Both run as an identity (``--as USER`` or ``--token-file``) and are audited, refusals included. A
patient id is read from a hidden prompt and pseudonymised at once. Exit status: 0 done, 2 usage
or archive error, 3 not authenticated (HTTP 401 in the portal), 4 not allowed (HTTP 403).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.cli._command import Command
from infra.cli._ctx import retrieval_of
from infra.cli._identity import AS_USER, TOKEN_FILE, identity

if TYPE_CHECKING:
    from retrieval.service import Hit


@click.command("search", cls=Command)
@click.option("--encounter", default=None, help="encounter id")
@click.option("--patient", is_flag=True, help="every record of a patient (id is prompted)")
@click.option("--facility", default=None, help="facility code (MA_CSKCB)")
@click.option("--class", "retention_class", default=None, help="retention class")
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="first discharge day (local)",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="last discharge day (local, inclusive)",
)
@AS_USER
@TOKEN_FILE
@click.pass_context
def search_cmd(
    ctx: click.Context,
    encounter: str | None,
    patient: bool,
    facility: str | None,
    retention_class: str | None,
    start: datetime | None,
    end: datetime | None,
    as_user: str | None,
    token_file: Path | None,
) -> None:
    """Find archived records: dates, class, retain-until, hold and last verification."""
    from retrieval.service import Query

    r = retrieval_of(ctx)
    principal = identity(r, as_user, token_file)
    pseudonym = r.pseudonym(click.prompt("patient id", hide_input=True)) if patient else None
    query = Query(
        encounter_id=encounter,
        patient_pseudonym=pseudonym,
        facility=facility,
        retention_class=retention_class,
        discharged_from=start.date() if start else None,
        discharged_to=end.date() if end else None,
    )
    result = r.search(principal, query, now=datetime.now(UTC))
    click.echo(
        f"{'encounter':<16} {'facility':<8} {'discharged':<10} {'class':<18} "
        f"{'retain until':<12} {'hold':<4} verification"
    )
    for hit in result.hits:
        click.echo(_hit_line(hit))
    more = " (more: narrow the search)" if result.truncated else ""
    click.echo(f"{len(result.hits)} record(s){more}")


def _hit_line(hit: Hit) -> str:
    v = hit.verification
    verified = f"{v.status} {v.verified_at:%Y-%m-%d}" if v else "not yet verified"
    hold = "yes" if hit.on_hold else "no"
    return (
        f"{hit.encounter_id:<16} {hit.facility:<8} {hit.discharged_at:%Y-%m-%d} "
        f"{hit.retention_class:<18} {hit.retain_until:%Y-%m-%d}   {hold:<4} {verified}"
    )


@click.command("retrieve", cls=Command)
@click.option("--encounter", default=None, help="encounter id")
@click.option("--patient", is_flag=True, help="every record of a patient (id is prompted)")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="where the zipped bag goes",
)
@click.option(
    "--renew",
    is_flag=True,
    help="also bag each PDF with a fresh document timestamp from the TSA, so it validates alone "
    "in a viewer after its timestamps' certificates expire (the archived PDF is unchanged)",
)
@AS_USER
@TOKEN_FILE
@click.pass_context
def retrieve_cmd(
    ctx: click.Context,
    encounter: str | None,
    patient: bool,
    out_dir: Path,
    renew: bool,
    as_user: str | None,
    token_file: Path | None,
) -> None:
    """Export a dossier: signed PDFs as archived, their evidence records, FHIR data,
    verification reports, BagIt zip."""
    if bool(encounter) == patient:
        raise click.UsageError("give exactly one of --encounter ID or --patient")
    r = retrieval_of(ctx)
    principal = identity(r, as_user, token_file)
    pseudonym = r.pseudonym(click.prompt("patient id", hide_input=True)) if patient else None
    result = r.export(
        principal,
        out_dir=out_dir,
        now=datetime.now(UTC),
        encounter_id=encounter,
        patient_pseudonym=pseudonym,
        renew=renew,
    )
    for d in result.documents:
        colour = "green" if d.status == "passed" else "red"
        extra = f"evidence {d.evidence}" + (", renewed copy" if d.renewed else "")
        click.echo(
            f"{d.encounter_id:<16} {click.style(d.status, fg=colour):<22} {d.reason_code} ({extra})"
        )
    click.echo(f"{result.path} ({len(result.documents)} document(s), sha256 {result.sha256})")
    click.echo("check it with any BagIt tool, e.g. `python -m bagit --validate <unzipped dir>`;")
    click.echo("data/README.txt in the bag says how to check each PDF and its evidence record")
