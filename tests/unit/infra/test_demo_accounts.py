"""`make demo`'s accounts file: which demo accounts to create, reuse or report (pure logic)."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from infra.demo_retrieval import (
    ACCOUNTS,
    AccountPlan,
    format_accounts,
    new_password,
    parse_accounts,
    plan_accounts,
)
from retrieval.access import Role, User

NAMES = [name for name, _ in ACCOUNTS]


def _fresh() -> Callable[[], str]:
    numbers = count(1)
    return lambda: f"fresh-password-{next(numbers):03d}"


def _users(*names: str, **overrides: User) -> dict[str, User]:
    roles = dict(ACCOUNTS)
    users = {n: User(n, roles[n], "scrypt$x") for n in names}
    return {**users, **overrides}


def test_the_demo_accounts_and_their_roles() -> None:
    assert ACCOUNTS == (
        ("demo.admin", Role.ADMIN),
        ("demo.officer", Role.RECORDS_OFFICER),
        ("demo.inspector", Role.INSPECTOR),
        ("demo.inspector2", Role.INSPECTOR),
        ("demo.auditor", Role.AUDITOR),
    )


def test_a_fresh_archive_creates_every_account_admin_first() -> None:
    plan = plan_accounts({}, {}, fresh=_fresh())
    assert list(plan.create) == NAMES
    assert len({pw for _, pw in plan.create.values()}) == len(NAMES)
    assert plan.create["demo.inspector2"][0] is Role.INSPECTOR
    assert not plan.known
    assert not plan.unusable


def test_a_second_run_reuses_accounts_whose_password_is_on_file() -> None:
    saved = {n: f"saved-{n}" for n in NAMES}
    plan = plan_accounts(_users(*NAMES), saved, fresh=_fresh())
    assert plan == AccountPlan({}, saved, {})


def test_existing_accounts_without_a_password_on_file_are_reported_not_replaced() -> None:
    users = _users(
        *NAMES,
        **{
            "demo.auditor": User("demo.auditor", Role.ADMIN, "h"),
            "demo.officer": User("demo.officer", Role.RECORDS_OFFICER, "h", disabled=True),
        },
    )
    plan = plan_accounts(users, {"demo.admin": "pw-admin"}, fresh=_fresh())
    assert plan.create == {}
    assert plan.known == {"demo.admin": "pw-admin"}
    assert set(plan.unusable) == {
        "demo.officer",
        "demo.inspector",
        "demo.inspector2",
        "demo.auditor",
    }
    assert "password is not in the accounts file" in plan.unusable["demo.inspector"]
    assert "disabled" in plan.unusable["demo.officer"]
    assert "exists as admin" in plan.unusable["demo.auditor"]


def test_only_missing_accounts_are_created_and_a_stale_password_is_not_reused() -> None:
    saved = {"demo.admin": "pw-admin", "demo.inspector2": "stale-from-a-wiped-var"}
    plan = plan_accounts(_users("demo.admin"), saved, fresh=_fresh())
    assert plan.known == {"demo.admin": "pw-admin"}
    assert list(plan.create) == NAMES[1:]
    assert plan.create["demo.inspector2"][1] != "stale-from-a-wiped-var"


def test_the_file_round_trips_and_keeps_unknown_passwords_as_comments() -> None:
    passwords = {"demo.admin": "a" * 24, "demo.inspector": "b-c_d" * 5}
    problems = {"demo.auditor": "exists, but its password is not in the accounts file"}
    text = format_accounts(passwords, problems)
    assert parse_accounts(text) == passwords
    assert "# demo.auditor" in text
    assert "password is not in the accounts file" in text
    assert ["demo.inspector", "inspector"] in [line.split()[:2] for line in text.splitlines()]


def test_parse_ignores_comments_blank_and_malformed_lines() -> None:
    text = "# demo.admin admin secret\n\ndemo.officer records-officer pw-1234567890\nbroken line\n"
    assert parse_accounts(text) == {"demo.officer": "pw-1234567890"}


def test_generated_passwords_are_long_enough_and_url_safe() -> None:
    passwords = {new_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= 12 and p.replace("-", "").replace("_", "").isalnum() for p in passwords)
