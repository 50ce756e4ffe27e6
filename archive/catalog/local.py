"""The catalog's local directory: a verified cache of the bucket copies, safe against crashes.

On disk (``Settings.catalog_dir``)::

    <catalog_dir>/
        HEAD                          seq and sha256 of the newest manifest (JSON, one line)
        .lock                         flock held by the one process appending
        manifests/0000000001.parquet  one manifest per run (rows + chain metadata)
        manifests/0000000002.parquet
        manifests/.<name>.<random>.tmp  an interrupted write: ignored by readers, swept by writers

Crashes. The bucket copy is created first (it claims the sequence number, :mod:`.manifests`);
then every file is written through :func:`archive.core.atomic.write_atomic` (temp file in the
same directory, fsynced, renamed with ``os.replace``, the directory fsynced): the manifest first,
then HEAD. Killed before the claim: nothing was appended anywhere. After the claim, before the
manifest rename: the bucket holds it and the next append or sync downloads it. Between the
manifest and HEAD renames: the new manifest is *pending* - accepted because it chains to HEAD's
manifest and all its pages pass their checksums - and the next append or sync finishes HEAD. (A
release before this one uploaded last: the next append or sync uploads what the bucket lacks.)

Every OS error leaves this module as a :class:`CatalogError` that says what to check.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from archive.catalog.chain import (
    HeadRecord,
    ManifestInfo,
    check_head,
    check_sequence,
    link_manifest,
)
from archive.catalog.codec import decode_table
from archive.catalog.naming import manifest_name, parse_manifest_name
from archive.core.atomic import PRIVATE, write_atomic
from archive.core.errors import CatalogError

MANIFESTS_DIR: Final = "manifests"
HEAD_FILE: Final = "HEAD"
LOCK_FILE: Final = ".lock"
LOCAL: Final = MANIFESTS_DIR + "/"  # prefixes local manifest names in errors
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalState:
    """The verified chain in a directory, and what it looked like when it was read."""

    manifests: tuple[ManifestInfo, ...]
    head_pending: bool
    fingerprint: tuple[object, ...]  # to notice another process's append since we loaded


def load(directory: Path) -> LocalState:
    """Read and verify every manifest and HEAD (the whole chain)."""
    # Fingerprint first (a change during the load makes the next writer reload), and HEAD before
    # the listing: a writer renames the manifest before HEAD, so a concurrent append looks pending.
    fingerprint = fingerprint_of(directory)
    head_path = directory / HEAD_FILE
    head_bytes = read_file(head_path) if head_path.exists() else None
    head = HeadRecord.decode(head_bytes, label=str(head_path)) if head_bytes is not None else None
    manifests: list[ManifestInfo] = []
    data = b""
    for seq in check_sequence(_list_seqs(directory / MANIFESTS_DIR), where=LOCAL):
        data = read_file(directory / MANIFESTS_DIR / manifest_name(seq))
        prev = manifests[-1] if manifests else None
        manifests.append(link_manifest(prev, seq, data, label=LOCAL + manifest_name(seq)))
    pending = check_head(head, manifests, where=LOCAL)
    if pending:  # nothing vouches for its bytes yet: at least every page must pass its checksum
        decode_table(data, name=LOCAL + manifests[-1].name)
    return LocalState(manifests=tuple(manifests), head_pending=pending, fingerprint=fingerprint)


def _list_seqs(manifests_dir: Path) -> list[int]:
    if not manifests_dir.is_dir():
        return []
    seqs = []
    for entry in wrap_os(lambda: sorted(os.listdir(manifests_dir))):
        if entry.startswith("."):
            continue  # temp files of interrupted writes
        seq = parse_manifest_name(entry)
        if seq is None:
            raise CatalogError(
                f"unexpected file {manifests_dir / entry} in the catalog: manifests are named "
                "NNNNNNNNNN.parquet; move it out of the directory"
            )
        seqs.append(seq)
    return seqs


def fingerprint_of(directory: Path) -> tuple[object, ...]:
    """Cheap to take: the names, HEAD's bytes and the newest manifest's inode, size and time."""
    seqs = tuple(_list_seqs(directory / MANIFESTS_DIR))
    head = directory / HEAD_FILE
    newest = None
    if seqs:
        s = wrap_os(lambda: os.stat(directory / MANIFESTS_DIR / manifest_name(seqs[-1])))
        newest = (s.st_ino, s.st_size, s.st_mtime_ns)
    return seqs, read_file(head) if head.exists() else None, newest


def write_head(directory: Path, newest: ManifestInfo) -> None:
    write_file(directory / HEAD_FILE, HeadRecord(seq=newest.seq, sha256=newest.sha256).encode())


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` atomically and durably, or leave the previous catalog as it was."""
    try:
        # 0600 like keys and audit segments: manifests name encounters and pseudonyms. (The old
        # writer asked for 0640 and left it to the umask; the one atomic write sets modes exactly.)
        write_atomic(path, data, mode=PRIVATE)
    except OSError as e:
        raise CatalogError(
            f"could not write {path} ({e.strerror or type(e).__name__}): check free space and "
            "permissions, then retry; the previous catalog is intact"
        ) from e


def remove_temp_files(directory: Path) -> None:
    """Sweep what killed writers left behind; only called under the writer lock."""
    for folder in (directory, directory / MANIFESTS_DIR):
        for tmp in folder.glob(".*.tmp"):
            wrap_os(functools.partial(tmp.unlink, missing_ok=True))


def mkdir(path: Path) -> None:
    wrap_os(functools.partial(path.mkdir, parents=True, exist_ok=True))


def read_file(path: Path) -> bytes:
    return wrap_os(path.read_bytes)


def wrap_os(action: Callable[[], _T]) -> _T:
    try:
        return action()
    except OSError as e:
        raise CatalogError(
            f"catalog file access failed ({e.strerror or type(e).__name__}: {e.filename}); "
            "check that the catalog directory exists and is readable and writable"
        ) from e
