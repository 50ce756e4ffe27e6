"""The archive's one way of writing a file: whole or not at all, durable, with a chosen mode.

Keys, manifests, audit segments, run reports and unsealed records are all written here, so that
each of them gets the same guarantees: a reader (or a crash) sees the old file or the new one,
never half of one; the new contents and the new directory entry are on disk when the call
returns; the file has exactly the mode asked for, whatever the umask; and nothing is left behind
when a write fails. Only a process killed outright can leave a temporary file, always named
``.<name>.<random>.tmp`` beside the target, so that readers skip it and writers may sweep it.

``exclusive=True`` publishes with a hard link instead of a rename: it refuses (FileExistsError)
to replace a file that is already there, for files whose first version must never be clobbered
by a process that lost a creation race.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PRIVATE: int = 0o600  # secrets and anything naming patients, encounters or staff


def write_atomic(
    path: Path, data: bytes | str, *, mode: int = PRIVATE, exclusive: bool = False
) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_writer`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path, mode=mode, exclusive=exclusive) as f:
        f.write(payload)


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600."""
    write_atomic(path, data, mode=PRIVATE)


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, mode: int = PRIVATE, exclusive: bool = False
) -> Iterator[BinaryIO]:
    """A file to stream into that appears at ``path`` only if the ``with`` block completes.

    On success the file is fsynced, published (renamed over ``path``, or linked to it when
    ``exclusive``) and the directory fsynced; on any exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp's 0600, or what the caller asked for
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, exclusive=exclusive)
        fsync_dir(path.parent)
    finally:
        # After a rename the temporary name is gone; after a link it is a spare second name.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a rename, a new link) durable, not only a file's contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: str, path: Path, *, exclusive: bool) -> None:
    if exclusive:
        os.link(tmp, path)  # FileExistsError when another writer got there first
    else:
        os.replace(tmp, path)
