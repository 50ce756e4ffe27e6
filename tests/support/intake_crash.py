"""``emr-archive intake scans`` in a child process that kills itself (SIGKILL, like a power cut)
at one step: ``python -m tests.support.intake_crash STEP NTH -- <intake scans arguments>``.

The archive has no crash hooks inside a worker, so this wraps the stage itself, in this process
only (settings from :func:`tests.support.evidence_crash.child_env` run one worker, in-process),
and dies right after the NTH time the stage returns (``signing``: halfway through the first
batch it signs):

- ``signing``: a chunk of records is OCR'd and marked, its first document signed, the others
  not, nothing stored;
- ``stored``: a record is sealed and locked in the bucket, not catalogued;
- ``catalogued``: the run's records are catalogued, their evidence records not yet written.

Exits 3 if the step never came, so the test knows the child did not die where it meant to.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def _die_after(owner: type, name: str, nth: int) -> None:
    original: Callable[..., Any] = getattr(owner, name)
    seen = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        result = original(*args, **kwargs)
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def _die_mid_signing(owner: type) -> None:
    original: Callable[..., Any] = owner.sign_batch  # type: ignore[attr-defined]

    @functools.wraps(original)
    def wrapper(self: Any, pdfs: Any) -> Any:
        original(self, list(pdfs)[:1])  # the first signed (timestamp and all), the rest not
        os.kill(os.getpid(), signal.SIGKILL)

    owner.sign_batch = wrapper  # type: ignore[attr-defined]


def main(step: str, nth: int, argv: list[str]) -> None:
    from archive.catalog import Catalog
    from archive.pipeline.worker import RecordWorker
    from archive.sign import DocumentSigner
    from infra.cli import PROG_NAME, cli

    if step == "signing":
        _die_mid_signing(DocumentSigner)
    elif step == "stored":
        _die_after(RecordWorker, "_store_signed", nth)
    elif step == "catalogued":
        _die_after(Catalog, "append", nth)
    else:
        raise SystemExit(f"unknown step {step}")
    try:
        cli.main(args=["intake", "scans", *argv], prog_name=PROG_NAME)
    finally:
        sys.exit(3)  # the step never came: the test must know


if __name__ == "__main__":
    dash = sys.argv.index("--")
    main(sys.argv[1], int(sys.argv[2]), sys.argv[dash + 1 :])
