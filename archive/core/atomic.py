"""Writing files that may hold secrets or PHI: private (0600) and atomic.

A reader sees the old file or the new one, never half of one, and nobody else on the machine
can read either. (The keyring and the catalog have stricter needs of their own: create-once
links and directory fsyncs; see :mod:`archive.keys` and :mod:`archive.catalog`.)
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` with mode 0600 through a temporary file and a rename."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # whatever the umask or a previous file said
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
