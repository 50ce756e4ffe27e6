"""Verification as of a date: the moment ``--at`` names, the dated weak-algorithm table, and the
token check a run's records share."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data

import archive.evidence.timestamps as timestamps
from archive.core.sections import EvidenceSettings
from archive.evidence import (
    EXPIRED,
    WEAK_ALGORITHM,
    DataObject,
    HashTree,
    TimestampRejectedError,
    TsaTrust,
    WeakAlgorithms,
    new_record,
)
from tests.support.evidence import local_tsa
from verification.as_of import judge_evidence, parse_moment
from verification.settings import VerifySettings, weak_table

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+30y", datetime(2056, 12, 7, 10, 30, tzinfo=UTC)),
        ("+10d", datetime(2026, 12, 17, 10, 30, tzinfo=UTC)),
        ("2056-01-01", datetime(2056, 1, 1, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2056-01-01T07:00:00+07:00", datetime(2056, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_date_relative_or_absolute_names_one_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text, now=NOW) == expected


def test_29_february_thirty_years_on_is_the_28th() -> None:
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert parse_moment("+30y", now=leap) == datetime(2058, 2, 28, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2056-01-01T00:00:00", "+30", "in thirty years", "-1y"])
def test_an_unclear_moment_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_moment(text, now=NOW)


def test_the_default_weak_table_dates_md5_and_sha1_and_leaves_sha2_alone() -> None:
    weak = weak_table(VerifySettings())
    assert weak.weak_at("sha1", datetime(2012, 8, 1, tzinfo=UTC))  # EU DSS 6.4's default policy
    assert not weak.weak_at("sha1", datetime(2012, 7, 31, tzinfo=UTC))
    assert weak.weak_at("md5", NOW)
    for name in ("sha256", "sha384", "sha512", "sha3_256"):
        assert not weak.weak_at(name, datetime(2100, 1, 1, tzinfo=UTC))


def test_the_weak_table_is_a_setting_and_a_typo_is_refused_at_load() -> None:
    settings = VerifySettings(evidence=EvidenceSettings(weak_algorithms=("sha256@2040-01-01",)))
    assert weak_table(settings).weak_at("sha256", datetime(2040, 1, 1, tzinfo=UTC))
    for bad in (
        ("sha265@2040-01-01",),
        ("sha256",),
        ("sha256@2040-13-01",),
        ("md5@2005-08-01",) * 2,
    ):
        with pytest.raises(ValidationError):
            EvidenceSettings(weak_algorithms=bad)


# --- the token check, judged once per (token, moment) -------------------------------------------

TSA = local_tsa(datetime(2024, 1, 1, tzinfo=UTC), datetime(2034, 1, 1, tzinfo=UTC), "Cache TSA")
DOCS = [f"record {i}".encode() for i in range(3)]


def _records() -> dict[bytes, bytes]:
    tree = HashTree.build("sha256", [hashlib.sha256(d).digest() for d in DOCS])
    token = TSA.stamp(tree.root, "sha256", datetime(2026, 1, 1, tzinfo=UTC))
    return {
        d: new_record("sha256", tree.reduced(hashlib.sha256(d).digest()), token).dump()
        for d in DOCS
    }


@pytest.fixture
def pyhanko_calls(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    calls: list[datetime] = []
    real = validate_tst_signed_data

    async def counting(signed: Any, context: Any, expected: Any) -> Any:
        calls.append(context.moment)
        return await real(signed, context, expected)

    monkeypatch.setattr(timestamps, "validate_tst_signed_data", counting)
    return calls


def test_a_run_s_records_share_one_check_of_their_token(pyhanko_calls: list[datetime]) -> None:
    roots = [TSA.root]
    at = datetime(2030, 1, 1, tzinfo=UTC)
    for doc, der in _records().items():
        verdict = judge_evidence(
            der, DataObject(data=doc), as_of=at, tsa_roots=roots, weak=WeakAlgorithms()
        )
        assert verdict.ok, verdict
    assert pyhanko_calls == [at]
    later = datetime(2035, 1, 1, tzinfo=UTC)  # another moment is judged anew: and fails
    codes = {
        judge_evidence(
            der, DataObject(data=doc), as_of=later, tsa_roots=roots, weak=WeakAlgorithms()
        ).code
        for doc, der in _records().items()
    }
    assert codes == {EXPIRED}
    assert pyhanko_calls == [at, later]


def test_a_cached_refusal_is_raised_again_with_its_code(pyhanko_calls: list[datetime]) -> None:
    check = TsaTrust([TSA.root])
    token = TSA.stamp(b"\x00" * 32, "sha256", datetime(2026, 1, 1, tzinfo=UTC))
    late = datetime(2040, 1, 1, tzinfo=UTC)
    for _ in range(3):
        with pytest.raises(TimestampRejectedError) as caught:
            check(token, late)
        assert caught.value.code == EXPIRED
    assert len(pyhanko_calls) == 1


def test_a_weak_hash_in_the_table_fails_the_record_after_its_date() -> None:
    doc, der = next(iter(_records().items()))
    weak = WeakAlgorithms.parse(["sha256:2029-01-01"])
    verdict = judge_evidence(
        der,
        DataObject(data=doc),
        as_of=datetime(2030, 1, 1, tzinfo=UTC),
        tsa_roots=[TSA.root],
        weak=weak,
    )
    assert verdict.code == WEAK_ALGORITHM


@pytest.mark.parametrize(
    ("command", "at"),
    [("verify", "2020-01-01"), ("verify", "thirty years on"), ("verify-file", "+30")],
)
def test_the_cli_refuses_an_unclear_date_and_the_archive_as_of_the_past(
    command: str, at: str, tmp_path: Path
) -> None:
    from infra.cli.commands.verify import verify_cmd, verify_file_cmd

    pdf = tmp_path / "any.pdf"
    pdf.write_bytes(b"%PDF-1.7")
    cmd, args = (verify_cmd, []) if command == "verify" else (verify_file_cmd, [str(pdf)])
    result = CliRunner().invoke(cmd, ["--at", at, *args])
    assert result.exit_code == 2, result.output
    assert "--at" in result.output
