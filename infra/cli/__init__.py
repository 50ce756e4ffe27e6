"""The ``emr-archive`` command line: thin wiring from settings to library calls.

The root group (``_root.py``) reads the settings once and every command finds them in its click
context; each module under ``commands/`` is one command group that calls one library function per
step and prints a result a records officer can read. The archive's own errors are printed as one
red line with the exit code their class carries (2, 3 not signed in, 4 refused); anything else
is a bug and keeps its traceback (``_command.py``). ``emr-archive`` and ``python -m infra.cli``
both enter through :func:`main`.
"""

from infra.cli._command import EXIT_ERROR, EXIT_FORBIDDEN, EXIT_UNAUTHENTICATED, Command, Group
from infra.cli._root import PROG_NAME, cli, main

__all__ = [
    "EXIT_ERROR",
    "EXIT_FORBIDDEN",
    "EXIT_UNAUTHENTICATED",
    "PROG_NAME",
    "Command",
    "Group",
    "cli",
    "main",
]
