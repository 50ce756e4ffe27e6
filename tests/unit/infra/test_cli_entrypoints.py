"""``emr-archive`` and ``python -m infra.cli`` are one program, and the archive's errors reach the
terminal as one line and the exit code their class carries.

Regression: commands were registered as a side effect of importing their modules, after the
``if __name__ == "__main__"`` line, so ``python -m infra.cli portal`` answered "No such command"
while the script worked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from archive.core.errors import ArchiveError, StoreUnavailableError
from infra.cli import Command, cli
from retrieval.errors import AccessDeniedError, AuthenticationError

SCRIPT = Path(sys.executable).with_name("emr-archive")
ENTRY_POINTS = {"script": [str(SCRIPT)], "module": [sys.executable, "-m", "infra.cli"]}

# Runs `<entry point> <command> --help` for every command in one interpreter: the entry point's
# own code (the console script, infra/cli/__main__.py) is executed afresh each time by runpy.
_WALK = """
import contextlib, io, json, runpy, sys
entry, paths = sys.argv[1], json.loads(sys.argv[2])
answers = {}
for path in paths:
    sys.argv = [entry, *path.split(), "--help"]
    out, code = io.StringIO(), None
    with contextlib.redirect_stdout(out):
        try:
            if entry == "module":
                runpy.run_module("infra.cli", run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(entry, run_name="__main__")
        except SystemExit as e:
            code = e.code
    answers[path] = [code, out.getvalue()]
json.dump(answers, sys.__stdout__)
"""


def _command_paths(group: click.Group, prefix: str = "") -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        yield path
        if isinstance(command, click.Group):
            yield from _command_paths(command, path)


def _walk(entry: str, paths: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WALK, entry, json.dumps(paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_every_command_answers_help_the_same_through_both_entry_points() -> None:
    assert SCRIPT.exists(), f"no console script next to {sys.executable}: pip install -e ."
    paths = ["", *_command_paths(cli)]
    walks = {"module": _walk("module", paths), "script": _walk(str(SCRIPT), paths)}
    answers = {}
    for name, walk in walks.items():
        out, err = walk.communicate(timeout=120)
        assert walk.returncode == 0, err
        answers[name] = json.loads(out)
    assert answers["script"] == answers["module"]
    for path, (code, text) in answers["script"].items():
        assert code == 0, (path, text)
        assert text.startswith(f"Usage: emr-archive {path}".rstrip()), (path, text)
    assert len(paths) > 40  # the walk reached the subcommands


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_portal_help_in_a_process_of_its_own(entry: str) -> None:
    result = subprocess.run(
        [*ENTRY_POINTS[entry], "portal", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: emr-archive portal [OPTIONS]")


def _failing(error: Exception) -> click.Command:
    @click.command("fails", cls=Command)
    def fails() -> None:
        raise error

    return fails


@pytest.mark.parametrize(
    ("error", "line", "code"),
    [
        (AuthenticationError("unknown user or wrong password"), "not signed in", 3),
        (AccessDeniedError("no active grant covers this record"), "refused", 4),
        (StoreUnavailableError("cannot reach the object store"), "error", 2),
        (ArchiveError("anything the archive raises on purpose"), "error", 2),
    ],
)
def test_an_archive_error_is_its_label_and_exit_code(
    error: ArchiveError, line: str, code: int
) -> None:
    result = CliRunner().invoke(_failing(error), [])
    assert result.exit_code == code
    assert result.stderr == f"{line}: {error}\n"
    assert result.stdout == ""


def test_any_other_error_is_a_bug_and_keeps_its_traceback() -> None:
    result = CliRunner().invoke(_failing(KeyError("a bug")), [])
    assert isinstance(result.exception, KeyError)
    assert result.stderr == ""


def test_an_invalid_setting_is_reported_by_the_root_before_any_command_runs() -> None:
    result = CliRunner().invoke(
        cli, ["settings"], env={"EMR_ARCHIVE_SEAL__ZSTD_LEVEL": "fast"}, prog_name="emr-archive"
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "EMR_ARCHIVE_SEAL__ZSTD_LEVEL" in result.stderr
    assert result.stdout == ""


def test_a_spawned_pool_worker_does_not_import_the_command_line() -> None:
    # A ``spawn`` child runs the parent's main script as ``__mp_main__`` before its own work: with
    # the script importing infra.cli, each batch-pool worker carried the whole command line
    # (~161 MB instead of ~16 MB). This is what multiprocessing.spawn does with the script.
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
        "print(sorted(m for m in ('infra.cli', 'prefect', 'pyhanko', 'retrieval') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(SCRIPT)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
