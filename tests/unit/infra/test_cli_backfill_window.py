"""``emr-archive archive --since --until`` refuses days it cannot archive as asked with one line
and the exit code of :class:`~archive.core.errors.WindowError`, before Prefect starts or any
catalog, ledger or lock file is written."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from archive.core.errors import WindowError
from infra.cli import cli

TODAY = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


@pytest.mark.parametrize(
    ("since", "until", "why"),
    [
        (TODAY - timedelta(days=3), TODAY - timedelta(days=5), "before the first"),
        (TODAY - timedelta(days=3), TODAY, "is not over yet"),
        (TODAY + timedelta(days=2), None, "is in the future"),
        (TODAY.replace(year=TODAY.year - 40), TODAY - timedelta(days=1), "at most 30 years"),
    ],
)
def test_a_window_that_cannot_be_archived_is_refused_in_one_line(
    tmp_path: Path, since: object, until: object, why: str
) -> None:
    argv = ["archive", "--since", str(since)] + (["--until", str(until)] if until else [])
    result = CliRunner().invoke(
        cli, argv, env={"EMR_ARCHIVE_DATA_DIR": str(tmp_path)}, prog_name="emr-archive"
    )
    assert result.exit_code == WindowError.exit_code, result.output
    assert result.stderr.startswith(f"{WindowError.label}: ")
    assert why in result.stderr
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # no catalog, ledger, lock or Prefect home
