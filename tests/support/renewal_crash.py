"""An evidence renewal in a child process that kills itself (SIGKILL, like a power cut) at one
step: ``python -m tests.support.renewal_crash STEP [NTH]``.

Settings come from the environment (:func:`tests.support.evidence_crash.child_env`, plus the
renewal horizon the test sets), as the CLI's would.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime


def main(step: str, nth: int) -> None:
    from archive.pipeline.evidence_wiring import renew_evidence
    from infra.settings import AppSettings as Settings

    seen = 0

    def on_step(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    renew_evidence(Settings(), now=datetime.now(UTC), on_step=on_step)
    sys.exit(3)  # the step never came: the test must know


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
