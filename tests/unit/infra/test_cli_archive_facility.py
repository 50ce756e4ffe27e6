"""``emr-archive archive --facility CODE`` refuses, in one line and before any work (no catalog,
lock, ledger or Prefect home written), a code ``[archive] facilities`` would not accept, the
reserved ``all``, and a facility with neither a configured export directory nor ``--source``;
the directory it runs on is that facility's, unless ``--source`` names another."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from archive.core.errors import ArchiveError, ConfigError, WindowError
from infra.cli import cli

YESTERDAY = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() - timedelta(days=1)


def _archive(
    data: Path,
    *args: str,
    facilities: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    days_ahead: int = 0,
) -> Result:
    env = {"EMR_ARCHIVE_DATA_DIR": str(data), **(env or {})}
    if facilities is not None:
        env["EMR_ARCHIVE_ARCHIVE__FACILITIES"] = json.dumps(facilities)
    argv = ["archive", "--since", str(YESTERDAY + timedelta(days=days_ahead)), *args]
    return CliRunner().invoke(cli, argv, env=env, prog_name="emr-archive")


def _refused(result: Result, exit_code: int, why: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert why in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("79 001", "is not 1-32 letters"),
        ("x" * 33, "is not 1-32 letters"),
        ("../79001", "is not 1-32 letters"),
        ("all", "is reserved"),
    ],
)
def test_a_code_the_setting_would_refuse_is_refused(tmp_path: Path, code: str, why: str) -> None:
    data = tmp_path / "data"
    result = _archive(data, "--facility", code, "--source", str(tmp_path))
    _refused(result, ArchiveError.exit_code, why)
    assert not data.exists()  # no catalog, lock or Prefect home


def test_a_facility_without_a_directory_or_source_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _archive(data, "--facility", "79002", facilities={"79001": str(tmp_path / "a")})
    _refused(result, ConfigError.exit_code, "facility 79002 has no export directory")
    assert "79001" in result.stderr  # it says which facilities are configured
    assert not data.exists()


@pytest.mark.parametrize("given", [False, True])
def test_the_facility_s_directory_is_used_unless_source_names_another(
    tmp_path: Path, given: bool
) -> None:
    # Only the directory that should be chosen is a source root: the run gets past the source
    # check to the next refusal (a day in the future) only if that one was chosen, not
    # SOURCE_DIR nor the other.
    configured, other = tmp_path / "configured-79001", tmp_path / "given"
    chosen = other if given else configured
    env = {
        "EMR_ARCHIVE_ARCHIVE__SOURCE_DIR": str(tmp_path / "source-dir"),
        "EMR_ARCHIVE_ARCHIVE__SOURCE_ROOTS": json.dumps([str(chosen)]),
    }
    args = ["--facility", "79001", *(["--source", str(other)] if given else [])]
    result = _archive(
        tmp_path / "data", *args, facilities={"79001": str(configured)}, env=env, days_ahead=2
    )
    _refused(result, WindowError.exit_code, "is in the future")
