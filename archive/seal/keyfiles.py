"""The local keyring's files: their format, and reading and writing them without leaking keys.

On-disk layout (directory 0700, files 0600, every write atomic)::

    keks.json       {"format": "emr-archive-keks", "format_version": 1,
                     "kek_id": "emr-archive-kek", "current_version": 2,
                     "versions": {"1": "<base64 of 32 bytes>", "2": "<base64 of 32 bytes>"}}
    pseudonym.json  {"format": "emr-archive-pseudonym-secret", "format_version": 1,
                     "secret": "<base64 of 32 bytes>"}

The pseudonym secret lives in its own file because it must never change (a new secret would orphan
every catalog entry), while ``keks.json`` is rewritten on every rotation. Old KEK versions are never
removed: objects sealed under them must open for the whole retention period (up to 30 years).

Files readable by anyone but their owner are refused, and error messages quote positions, never
contents. Creating a file never replaces one (a process that lost a creation race must not
clobber the winner's keys); rotating replaces ``keks.json`` atomically under a directory lock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.core.atomic import PRIVATE, write_atomic
from archive.core.errors import KeyringError
from archive.seal.keys import KEY_BYTES

KEKS_FILE = "keks.json"
PSEUDONYM_FILE = "pseudonym.json"
FORMAT_VERSION = 1
KEK_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_KEKS_FORMAT = "emr-archive-keks"
_PSEUDONYM_FORMAT = "emr-archive-pseudonym-secret"
_MAX_FILE_BYTES = 1024 * 1024  # refuse absurd files before parsing them
_HOW_TO_CREATE = "run `emr-archive stack up` (development) or `emr-archive keys init` (production)"


@dataclass(frozen=True, slots=True)
class KekSet:
    """Every version of one KEK, and which one new objects are sealed under."""

    kek_id: str
    current: int
    versions: dict[int, bytes] = field(repr=False)


class AlreadyExistsError(KeyringError):
    """Lost a creation race to another process; the caller opens what that process wrote."""


# --- format ---------------------------------------------------------------------------------------


def encode_keks(keks: KekSet) -> bytes:
    return dump_document(
        {
            "format": _KEKS_FORMAT,
            "format_version": FORMAT_VERSION,
            "kek_id": keks.kek_id,
            "current_version": keks.current,
            "versions": {str(v): _b64(k) for v, k in sorted(keks.versions.items())},
        }
    )


def encode_pseudonym_secret(secret: bytes) -> bytes:
    return dump_document(
        {"format": _PSEUDONYM_FORMAT, "format_version": FORMAT_VERSION, "secret": _b64(secret)}
    )


def decode_keks(path: Path) -> KekSet:
    doc = load_document(path, _KEKS_FORMAT)
    kek_id = doc.get("kek_id")
    if not (isinstance(kek_id, str) and KEK_ID.fullmatch(kek_id)):
        raise invalid_field(path, "kek_id")
    raw_versions = doc.get("versions")
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise invalid_field(path, "versions")
    versions = {
        _version_number(name, path): _unb64(encoded, path, f"versions.{name}")
        for name, encoded in raw_versions.items()
    }
    current = doc.get("current_version")
    if isinstance(current, bool) or not isinstance(current, int) or current not in versions:
        raise invalid_field(path, "current_version")
    return KekSet(kek_id=kek_id, current=current, versions=versions)


def decode_pseudonym_secret(path: Path) -> bytes:
    missing = (
        f"{path} is missing: restore it from backup (a new secret would change every patient "
        "pseudonym and orphan the catalog)"
    )
    return _unb64(load_document(path, _PSEUDONYM_FORMAT, missing).get("secret"), path, "secret")


def _version_number(name: object, path: Path) -> int:
    if not (isinstance(name, str) and name.isdecimal() and int(name) >= 1):
        raise invalid_field(path, "versions")
    return int(name)


def load_document(path: Path, expected_format: str, missing: str | None = None) -> dict[str, Any]:
    raw = _read_private_file(path, missing or f"no keyring in {path.parent}: {_HOW_TO_CREATE}")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # Only the parser's position is quoted, never the content: it holds keys.
        where = f"line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "encoding"
        raise KeyringError(f"{path} is not valid JSON ({where}): restore it from backup") from None
    if not isinstance(doc, dict) or doc.get("format") != expected_format:
        raise invalid_field(path, "format")
    if doc.get("format_version") != FORMAT_VERSION:
        raise KeyringError(
            f"{path} has format_version {doc.get('format_version')!r}; this emr-archive reads "
            f"version {FORMAT_VERSION}: upgrade emr-archive"
        )
    return doc


def invalid_field(path: Path, what: str) -> KeyringError:
    return KeyringError(f"{path} has a missing or invalid {what!r}: restore it from backup")


def dump_document(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _unb64(value: object, path: Path, what: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise invalid_field(path, what)
    return key


# --- private files --------------------------------------------------------------------------------


def make_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    except OSError as e:
        raise KeyringError(f"cannot create keyring directory {directory}: {e.strerror}") from e


def _read_private_file(path: Path, missing: str) -> bytes:
    """Read a key file, refusing it if group or others have any access: keys must not leak."""
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyringError(f"{path} is not a regular file")
            if mode & 0o077:
                raise KeyringError(
                    f"{path} has mode {stat.S_IMODE(mode):04o}, so users other than its owner can "
                    f"read or change it: run `chmod 600 {path}` (and consider the keys exposed)"
                )
            return f.read(_MAX_FILE_BYTES)
    except FileNotFoundError:
        raise KeyringError(missing) from None
    except OSError as e:
        raise KeyringError(f"cannot read {path}: {e.strerror}") from e


def create_file(path: Path, payload: bytes) -> None:
    """Write atomically, never replacing an existing file (a race loser must not clobber)."""
    _write(path, payload, exclusive=True)


def replace_file(path: Path, payload: bytes) -> None:
    """Write atomically: readers and a crash see the old file or the new one, never a torn one."""
    _write(path, payload, exclusive=False)


def _write(path: Path, payload: bytes, *, exclusive: bool) -> None:
    try:
        write_atomic(path, payload, mode=PRIVATE, exclusive=exclusive)
    except FileExistsError:
        raise AlreadyExistsError(f"{path} was created concurrently") from None
    except OSError as e:
        raise KeyringError(f"cannot write {path}: {e.strerror}") from e


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise rotations across processes, so two of them never both write version N+1."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as e:
        raise KeyringError(f"cannot open keyring directory {directory}: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
