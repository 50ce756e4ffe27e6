"""A nightly run in a child process that kills itself (SIGKILL, like a power cut) at one step of
the evidence stage: ``python -m tests.support.evidence_crash SOURCE SINCE STEP [NTH]``.

Settings come from the environment (:func:`child_env`), as the CLI's would.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from infra.settings import AppSettings as Settings


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env.update(
        {
            "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
            "EMR_ARCHIVE_S3__BUCKET": settings.s3.bucket,
            "EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(settings.catalog_dir),
            "EMR_ARCHIVE_ARCHIVE__WORKERS": "1",
            "EMR_ARCHIVE_ARCHIVE__SOURCE_ROOTS": json.dumps(
                [str(r) for r in settings.archive.source_roots]
            ),
        }
    )
    for name, value in settings.stack.model_dump().items():
        env[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    return env


def main(source: str, since: str, step: str, nth: int) -> None:
    from archive.pipeline import ArchiveRun, RunOptions, window_for
    from retention.classifier import PolicyClassifier

    settings = Settings()
    window = window_for(
        "Asia/Ho_Chi_Minh", since=date.fromisoformat(since), until=None, now=datetime.now(UTC)
    )
    options = RunOptions.create(settings, window=window, source=Path(source), now=datetime.now(UTC))
    seen = 0

    def on_step(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        run.evidence_step = on_step
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        run.finish()
    sys.exit(3)  # the step never came: the test must know


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1)
