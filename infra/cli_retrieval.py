"""``emr-archive search | retrieve | grant | user | login | logout``: retrieval for inspectors and
records officers, on :class:`retrieval.service.Retrieval` (the same API the portal uses).

Every command runs as an identity: ``--as USER`` (password prompted, hidden) or ``--token-file``
(written by ``emr-archive login``). A patient id is read from a hidden prompt, never from the
command line, and pseudonymised at once. Exit status: 0 done, 2 usage or archive error,
3 not authenticated (HTTP 401 in the portal), 4 not allowed (HTTP 403). Refusals are audited.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.cli_common import AS_USER, TOKEN_FILE, identity
from infra.cli_common import friendly_errors as _friendly_errors
from infra.cli_common import settings_of as _settings
from retrieval.access import Role

if TYPE_CHECKING:
    from retrieval.service import Hit, Retrieval


def _retrieval(ctx: click.Context) -> Retrieval:
    from retrieval.service import Retrieval

    return Retrieval.open(_settings(ctx))


# --- sessions ------------------------------------------------------------------------------------


@click.command("login")
@click.option("--as", "as_user", required=True)
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
@_friendly_errors
def login_cmd(ctx: click.Context, as_user: str, token_file: Path) -> None:
    """Sign in and write a signed token (valid 8 hours, 0600) for later commands."""
    r = _retrieval(ctx)
    session = r.login(as_user, click.prompt("password", hide_input=True), now=datetime.now(UTC))
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(session.token + "\n")
    expires = session.principal.expires_at
    click.echo(f"signed in as {as_user} ({session.principal.role.value}) until {expires:%H:%M}Z")


@click.command("logout")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
@_friendly_errors
def logout_cmd(ctx: click.Context, token_file: Path) -> None:
    """Revoke the token (replaying it is refused from now on) and delete the file."""
    r = _retrieval(ctx)
    now = datetime.now(UTC)
    r.logout(r.authenticate(token_file.read_text(encoding="ascii").strip(), now=now), now=now)
    token_file.unlink()
    click.echo("signed out; the token is revoked")


# --- search and retrieve -------------------------------------------------------------------------


@click.command("search")
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
@_friendly_errors
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

    r = _retrieval(ctx)
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


@click.command("retrieve")
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
@AS_USER
@TOKEN_FILE
@click.pass_context
@_friendly_errors
def retrieve_cmd(
    ctx: click.Context,
    encounter: str | None,
    patient: bool,
    out_dir: Path,
    as_user: str | None,
    token_file: Path | None,
) -> None:
    """Export a dossier: signed PDFs as archived, FHIR data, verification reports, BagIt zip."""
    if bool(encounter) == patient:
        raise click.UsageError("give exactly one of --encounter ID or --patient")
    r = _retrieval(ctx)
    principal = identity(r, as_user, token_file)
    pseudonym = r.pseudonym(click.prompt("patient id", hide_input=True)) if patient else None
    result = r.export(
        principal,
        out_dir=out_dir,
        now=datetime.now(UTC),
        encounter_id=encounter,
        patient_pseudonym=pseudonym,
    )
    for d in result.documents:
        colour = "green" if d.status == "passed" else "red"
        click.echo(f"{d.encounter_id:<16} {click.style(d.status, fg=colour):<22} {d.reason_code}")
    click.echo(f"{result.path} ({len(result.documents)} document(s), sha256 {result.sha256})")
    click.echo("check it with any BagIt tool, e.g. `python -m bagit --validate <unzipped dir>`")


# --- grants --------------------------------------------------------------------------------------


@click.group(name="grant")
def grant_group() -> None:
    """Inspector grants: what an inspector may find and export, and until when."""


@grant_group.command("issue")
@click.option("--inspector", required=True, help="the inspector's account")
@click.option("--facility", default=None, help="facility code (MA_CSKCB)")
@click.option("--encounter", "encounters", multiple=True, help="encounter id (repeatable)")
@click.option("--patient", is_flag=True, help="one patient's records (id is prompted)")
@click.option("--days", type=click.IntRange(1, 366), default=14, show_default=True)
@click.option("--case", "case_ref", required=True, help="inspection decision or court file")
@AS_USER
@TOKEN_FILE
@click.pass_context
@_friendly_errors
def grant_issue(
    ctx: click.Context,
    inspector: str,
    facility: str | None,
    encounters: tuple[str, ...],
    patient: bool,
    days: int,
    case_ref: str,
    as_user: str | None,
    token_file: Path | None,
) -> None:
    """Issue a grant, from now for --days; it expires by itself."""
    r = _retrieval(ctx)
    principal = identity(r, as_user, token_file)
    pseudonym = r.pseudonym(click.prompt("patient id", hide_input=True)) if patient else None
    now = datetime.now(UTC)
    grant = r.issue_grant(
        principal,
        now=now,
        inspector=inspector,
        facility=facility,
        encounter_ids=encounters,
        patient_pseudonym=pseudonym,
        case_ref=case_ref,
        valid_from=now,
        valid_until=now + timedelta(days=days),
    )
    click.echo(f"grant {grant.grant_id} for {inspector} until {grant.valid_until:%Y-%m-%d %H:%M}Z")


@grant_group.command("revoke")
@click.argument("grant_id")
@click.option("--reason", required=True)
@AS_USER
@TOKEN_FILE
@click.pass_context
@_friendly_errors
def grant_revoke(
    ctx: click.Context, grant_id: str, reason: str, as_user: str | None, token_file: Path | None
) -> None:
    """Revoke a grant before it expires."""
    r = _retrieval(ctx)
    principal = identity(r, as_user, token_file)
    r.revoke_grant(principal, grant_id, reason=reason, now=datetime.now(UTC))
    click.echo(f"grant {grant_id} revoked")


@grant_group.command("list")
@AS_USER
@TOKEN_FILE
@click.pass_context
@_friendly_errors
def grant_list(ctx: click.Context, as_user: str | None, token_file: Path | None) -> None:
    """Grants (records officers: all; inspectors: their own active ones)."""
    r = _retrieval(ctx)
    now = datetime.now(UTC)
    for g in r.grants(identity(r, as_user, token_file), now=now):
        scope = ", ".join(
            x
            for x in (
                g.facility and f"facility {g.facility}",
                g.encounter_ids and f"{len(g.encounter_ids)} encounter(s)",
                g.patient_pseudonym and "one patient",
            )
            if x
        )
        state = "active" if g.active(now) else "expired"
        click.echo(
            f"{g.grant_id} {g.inspector:<16} {scope:<32} until "
            f"{g.valid_until:%Y-%m-%d %H:%M}Z {state} case {g.case_ref}"
        )


# --- users ---------------------------------------------------------------------------------------


@click.group(name="user")
def user_group() -> None:
    """Accounts for retrieval (and the portal)."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@AS_USER
@click.pass_context
@_friendly_errors
def user_add(ctx: click.Context, username: str, role: str, as_user: str | None) -> None:
    """Add an account (an admin does; the very first account is an admin adding itself)."""
    r = _retrieval(ctx)
    principal = identity(r, as_user, None) if as_user else None
    password = click.prompt(
        f"new password for {username}", hide_input=True, confirmation_prompt=True
    )
    r.add_user(principal, username, Role(role), password, now=datetime.now(UTC))
    click.echo(f"user {username} ({role}) added")


@user_group.command("disable")
@click.argument("username")
@AS_USER
@click.pass_context
@_friendly_errors
def user_disable(ctx: click.Context, username: str, as_user: str | None) -> None:
    """Disable an account: its password and all its tokens stop working."""
    r = _retrieval(ctx)
    r.disable_user(identity(r, as_user, None), username, now=datetime.now(UTC))
    click.echo(f"user {username} disabled")


COMMANDS = (login_cmd, logout_cmd, search_cmd, retrieve_cmd, grant_group, user_group)
