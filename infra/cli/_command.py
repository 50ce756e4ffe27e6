"""The click classes every ``emr-archive`` command is made of, and the one place where the
archive's errors meet the terminal.

An error the archive raises on purpose (:class:`archive.core.errors.ArchiveError`) knows its label
and exit code; here it becomes one red line on stderr and that exit status. Anything else is a
bug and keeps its traceback. The handler sits in ``main()``, which click calls only on the command
that runs as the program: the root group in production, so it runs once per invocation. Every
top-level command carries the class too, so that a command run on its own (as the tests run one
with click's runner) reports errors exactly as the full program does.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from archive.core.errors import ArchiveError
from retrieval.errors import AccessDeniedError, AuthenticationError

# The exit statuses scripts around emr-archive may test for (1 is "ran, but something failed").
EXIT_ERROR = ArchiveError.exit_code
EXIT_UNAUTHENTICATED = AuthenticationError.exit_code
EXIT_FORBIDDEN = AccessDeniedError.exit_code


class Command(click.Command):
    """A click command whose ``main()`` turns the archive's errors into a line and an exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except ArchiveError as e:
            click.secho(f"{e.label}: {e}", fg="red", err=True)
            sys.exit(e.exit_code)


class Group(Command, click.Group):
    """A command group of the same kind; its subcommands and subgroups inherit the classes."""

    command_class = Command
    group_class = type
