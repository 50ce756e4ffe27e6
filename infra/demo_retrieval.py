"""`make demo`, step 8: inspector retrieval on a record the demo has just archived.

Five demo accounts (their passwords in ``<data_dir>/demo/accounts.txt``, 0600, never on screen),
a records officer's grant to one inspector, that inspector's dossier export (a BagIt zip, checked),
the same export refused to an inspector without a grant, the audit trail of both, and how to open
the web portal. The demo may run again on the same ``var/``: existing accounts are reused when
their passwords are in the accounts file.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import bagit  # type: ignore[import-untyped]
import click

from archive.audit import AuditEvent
from archive.core.atomic import write_private
from archive.core.errors import ArchiveError
from infra.settings import AppSettings as Settings
from retrieval.access import Principal, Role, User
from retrieval.dossier import ExportResult, validate_zip
from retrieval.errors import AccessDeniedError
from retrieval.service import Retrieval

ACCOUNTS: Final = (
    ("demo.admin", Role.ADMIN),  # first: on a fresh archive it bootstraps itself
    ("demo.officer", Role.RECORDS_OFFICER),
    ("demo.inspector", Role.INSPECTOR),
    ("demo.inspector2", Role.INSPECTOR),  # deliberately without a grant
    ("demo.auditor", Role.AUDITOR),
)
ADMIN, OFFICER, INSPECTOR, OUTSIDER, AUDITOR = (name for name, _ in ACCOUNTS)
GRANT_DAYS: Final = 14


# --- the accounts file (pure) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountPlan:
    create: Mapping[str, tuple[Role, str]]  # missing accounts: role, fresh password
    known: Mapping[str, str]  # existing accounts whose password the accounts file holds
    unusable: Mapping[str, str]  # existing accounts the demo cannot sign in as: why


def new_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters


def plan_accounts(
    users: Mapping[str, User],
    saved: Mapping[str, str],
    *,
    fresh: Callable[[], str] = new_password,
) -> AccountPlan:
    """What to do with each demo account, given users.json and the accounts file."""
    create: dict[str, tuple[Role, str]] = {}
    known: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for name, role in ACCOUNTS:
        user = users.get(name)
        if user is None:
            create[name] = (role, fresh())
        elif user.role is not role:
            unusable[name] = f"exists as {user.role.value}, not {role.value}"
        elif user.disabled:
            unusable[name] = "exists but is disabled"
        elif name in saved:
            known[name] = saved[name]
        else:
            unusable[name] = "exists, but its password is not in the accounts file"
    return AccountPlan(create, known, unusable)


def parse_accounts(text: str) -> dict[str, str]:
    """``username role password`` lines; ``#`` starts a comment line."""
    passwords: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and not fields[0].startswith("#"):
            passwords[fields[0]] = fields[2]
    return passwords


def format_accounts(passwords: Mapping[str, str], problems: Mapping[str, str]) -> str:
    lines = [
        "# emr-archive demo accounts, written by `make demo` (0600): demonstration passwords only.",
        "# Sign in to the web portal, or use the CLI with --as USER.",
        f"# {'username':<17} {'role':<16} password",
    ]
    for name, role in ACCOUNTS:
        if name in passwords:
            lines.append(f"{name:<19} {role.value:<16} {passwords[name]}")
        else:
            lines.append(f"# {name:<17} {role.value:<16} ({problems.get(name, 'not available')})")
    return "\n".join(lines) + "\n"


# --- the step ------------------------------------------------------------------------------------


def show_retrieval(settings: Settings, row: Mapping[str, Any] | None) -> None:
    """Accounts, grant, export, refusal, audit trail, portal hint (``row``: an archived record)."""
    # Absolute paths throughout: bagit changes the working directory while it builds a bag.
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    accounts_file = settings.data_dir / "demo" / "accounts.txt"
    r = Retrieval.open(settings)
    people = _sign_in(r, ensure_accounts(r, accounts_file))
    missing = [n for n in (OFFICER, INSPECTOR, OUTSIDER, AUDITOR) if n not in people]
    if row is None:
        click.echo("   (this run archived nothing new: nothing to retrieve)")
    elif missing:
        click.echo(f"   skipping the inspection: cannot sign in as {', '.join(missing)}")
    else:
        _inspection(r, people, row, settings.data_dir / "demo" / "dossiers")
    _portal_hint(settings, accounts_file)


def ensure_accounts(r: Retrieval, path: Path) -> dict[str, str]:
    """Create the missing demo accounts, write the accounts file; the known passwords."""
    saved = parse_accounts(path.read_text(encoding="utf-8")) if path.exists() else {}
    plan = plan_accounts(r.users.users(), saved)
    made, failed = _create_accounts(r, plan)
    passwords = {**plan.known, **made}
    problems = {**plan.unusable, **failed}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, format_accounts(passwords, problems))
    names = ", ".join(f"{n} ({role.value})" for n, role in ACCOUNTS)
    click.echo(f"   accounts: {names}")
    click.echo(f"   {len(made)} created, {len(plan.known)} reused; passwords (0600): {path}")
    for name, why in problems.items():
        click.echo(f"   {name}: {why}")
    return passwords


def _create_accounts(r: Retrieval, plan: AccountPlan) -> tuple[dict[str, str], dict[str, str]]:
    made: dict[str, str] = {}
    failed: dict[str, str] = {}
    admin: Principal | None = None
    for name, (role, password) in plan.create.items():
        try:
            if name != ADMIN and admin is None:
                admin = _admin(r, {**plan.known, **made})
            r.add_user(admin, name, role, password, now=_now())
            made[name] = password
        except ArchiveError as e:
            failed[name] = f"not created: {e}"
    return made, failed


def _admin(r: Retrieval, passwords: Mapping[str, str]) -> Principal:
    if ADMIN not in passwords:
        raise ArchiveError(f"{ADMIN} is needed to add accounts and its password is unknown")
    return r.sign_in(ADMIN, passwords[ADMIN], now=_now())


def _sign_in(r: Retrieval, passwords: Mapping[str, str]) -> dict[str, Principal]:
    people: dict[str, Principal] = {}
    for name in (OFFICER, INSPECTOR, OUTSIDER, AUDITOR):
        if name not in passwords:
            continue
        try:
            people[name] = r.sign_in(name, passwords[name], now=_now())
        except ArchiveError as e:
            click.echo(f"   {name}: sign-in failed ({e})")
    return people


def _inspection(
    r: Retrieval, people: Mapping[str, Principal], row: Mapping[str, Any], out_dir: Path
) -> None:
    encounter, facility = str(row["encounter_id"]), str(row["facility"])
    now = _now()
    grant = r.issue_grant(
        people[OFFICER],
        now=now,
        inspector=INSPECTOR,
        facility=facility,
        case_ref=f"DEMO-inspection-{now:%Y%m%d}",
        valid_from=now,
        valid_until=now + timedelta(days=GRANT_DAYS),
    )
    click.echo(
        f"   {OFFICER} grants {INSPECTOR} facility {facility} for {GRANT_DAYS} days: "
        f"{grant.grant_id}, case {grant.case_ref}"
    )
    result = r.export(people[INSPECTOR], out_dir=out_dir, now=_now(), encounter_id=encounter)
    _show_export(result)
    _refusal(r, people[OUTSIDER], encounter, out_dir)
    _audit_trail(r, people[AUDITOR])


def _show_export(result: ExportResult) -> None:
    click.echo(f"   {INSPECTOR} exports encounter dossier: {result.path}")
    click.echo(f"   {len(result.documents)} document(s):")
    for d in result.documents:
        colour = "green" if d.status == "passed" else "red"
        click.echo(f"     {d.encounter_id}  {click.style(d.status, fg=colour)}  {d.reason_code}")
    try:
        validate_zip(result.path)
        click.echo("   BagIt bag valid (every file against its sha256 and sha512 manifests)")
    except bagit.BagError as e:
        click.secho(f"   BagIt bag INVALID: {e}", fg="red")


def _refusal(r: Retrieval, outsider: Principal, encounter: str, out_dir: Path) -> None:
    try:
        r.export(outsider, out_dir=out_dir, now=_now(), encounter_id=encounter)
    except AccessDeniedError as e:
        click.echo(f"   {OUTSIDER} tries the same export: refused (403): {e}")
        return
    click.secho(f"   {OUTSIDER} exported without a grant: access control is broken", fg="red")


def _audit_trail(r: Retrieval, auditor: Principal) -> None:
    events = r.audit_events(auditor, now=_now(), action="retrieval")
    click.echo(f"   audit log, as {AUDITOR} sees it (newest retrieval events):")
    for actor, action in (
        (OFFICER, "retrieval.grant.issue"),
        (INSPECTOR, "retrieval.export"),
        (OUTSIDER, "retrieval.export"),
    ):
        mine = [e for e in events if e.actor == actor and e.action == action]
        if mine:
            click.echo(f"     {_audit_line(mine[-1])}")


def _audit_line(e: AuditEvent) -> str:
    """Encounter ids, grant ids and refusal reasons only: never a patient."""
    encounters = ",".join(v for kind, v in e.entities if kind == "encounter")
    grants = e.detail.get("grant") or e.detail.get("grants") or ""
    extra = e.reason or (f"grant {grants}" if grants else "")
    return (
        f"{e.recorded.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z  {e.actor:<15} {e.action:<21} "
        f"{e.outcome:<7}  {encounters or '-'}  {extra}"
    ).rstrip()


def _portal_hint(settings: Settings, accounts_file: Path) -> None:
    click.echo(
        f"   Web portal: .venv/bin/emr-archive portal  then open "
        f"http://127.0.0.1:{settings.portal.port}/ and sign in as {INSPECTOR} "
        f"(password in {accounts_file})"
    )
    click.echo("   The portal speaks Vietnamese and English: the link at the top right switches.")


def _now() -> datetime:
    return datetime.now(UTC)
