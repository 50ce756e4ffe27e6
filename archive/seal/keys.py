"""Key-encryption keys (KEKs) and the patient-pseudonym secret, behind small interfaces.

Callers depend on :class:`KeyProvider` and :class:`Pseudonymizer`, never on where keys live, so AWS
KMS or a PKCS#11 HSM can be added as another implementation without touching the seal or the
catalog. :class:`LocalKeyring` is the default implementation: two files in a private directory.

On-disk layout (directory 0700, files 0600, every write atomic)::

    keks.json       {"format": "emr-archive-keks", "format_version": 1,
                     "kek_id": "emr-archive-kek", "current_version": 2,
                     "versions": {"1": "<base64 of 32 bytes>", "2": "<base64 of 32 bytes>"}}
    pseudonym.json  {"format": "emr-archive-pseudonym-secret", "format_version": 1,
                     "secret": "<base64 of 32 bytes>"}

The pseudonym secret lives in its own file because it must never change (a new secret would orphan
every catalog entry), while ``keks.json`` is rewritten on every rotation. Old KEK versions are never
removed: objects sealed under them must open for the whole retention period (up to 30 years).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import keywrap

from archive.core.errors import EnvelopeIntegrityError, KeyringError, UnknownKeyError

DEFAULT_KEYRING_DIR = Path("var/keys")
KEKS_FILE = "keks.json"
PSEUDONYM_FILE = "pseudonym.json"
FORMAT_VERSION = 1
KEY_BYTES = 32  # AES-256 KEKs, AES-256 data keys, HMAC-SHA256 secret

_KEKS_FORMAT = "emr-archive-keks"
_PSEUDONYM_FORMAT = "emr-archive-pseudonym-secret"
_KEK_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PSEUDONYM_DOMAIN = b"emr-archive/patient-pseudonym/v1\x00"
_PSEUDONYM_PREFIX = "p1_"
_RECORD_TOKEN_DOMAIN = b"emr-archive/record-token/v1\x00"
_RECORD_TOKEN_PREFIX = "r1"  # noqa: S105 - a format tag, not a secret
_MAX_FILE_BYTES = 1024 * 1024  # refuse absurd files before parsing them
_HOW_TO_CREATE = "run `emr-archive stack up` (development) or `emr-archive keys init` (production)"


@dataclass(frozen=True, slots=True)
class KekRef:
    """Names one version of a key-encryption key; stored in every sealed object's header."""

    kek_id: str
    version: int


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a KEK. Safe to store in the clear."""

    kek: KekRef
    wrapped: bytes


class KeyProvider(Protocol):
    """Wraps and unwraps per-object data keys; local keyring now, KMS or PKCS#11 later."""

    def current(self) -> KekRef:
        """The KEK version new objects are sealed under."""
        ...

    def wrap(self, data_key: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the current KEK version."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Return the data key.

        Raises UnknownKeyError when the KEK id or version is not held here, and
        EnvelopeIntegrityError when the wrapped bytes do not decrypt under that KEK (altered, or
        wrapped by a different key store).
        """
        ...


class Pseudonymizer(Protocol):
    """Turns a patient identifier into a stable pseudonym; the catalog stores only that."""

    def pseudonym(self, patient_id: str) -> str:
        """``"p1_"`` + 64 hex digits; the same input always gives the same pseudonym."""
        ...

    def record_token(self, record_id: str) -> str:
        """A keyed, stable token for a record id, used in object keys instead of the id.

        Record ids (encounter numbers) identify a patient's stay; a plain hash of a short
        numeric id could be reversed by trying them all, a keyed one cannot.
        """
        ...


@dataclass(frozen=True, slots=True)
class _KekSet:
    kek_id: str
    current: int
    versions: dict[int, bytes] = field(repr=False)


class LocalKeyring:
    """KEKs and the pseudonym secret in files under a private directory.

    Build with :meth:`create`, :meth:`open` or :meth:`open_or_create`. Safe to share between
    threads; rotation from several processes is serialised with a lock on the directory.
    """

    def __init__(self, *, directory: Path, keks: _KekSet, pseudonym_secret: bytes) -> None:
        self._directory = directory
        self._keks = keks  # replaced as a whole (never mutated) so readers need no lock
        self._pseudonym_secret = pseudonym_secret

    # --- factories -------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path = DEFAULT_KEYRING_DIR, *, kek_id: str) -> LocalKeyring:
        """Create a new keyring; refuses if one already exists (it would orphan sealed objects)."""
        if not _KEK_ID.fullmatch(kek_id):
            raise KeyringError(f"KEK id {kek_id!r} is invalid: use 1-64 of A-Z a-z 0-9 . _ -")
        directory = Path(directory)
        _make_private_dir(directory)
        for name in (KEKS_FILE, PSEUDONYM_FILE):
            if (directory / name).exists():
                raise KeyringError(
                    f"{directory / name} already exists: open the existing keyring instead of "
                    "creating one (a new keyring cannot open objects sealed under the old one)"
                )
        secret = os.urandom(KEY_BYTES)
        keks = _KekSet(kek_id=kek_id, current=1, versions={1: os.urandom(KEY_BYTES)})
        # Pseudonym file first: a keyring "exists" once keks.json does, so it is written last.
        _create_file(directory / PSEUDONYM_FILE, _encode_pseudonym_secret(secret))
        _create_file(directory / KEKS_FILE, _encode_keks(keks))
        return cls(directory=directory, keks=keks, pseudonym_secret=secret)

    @classmethod
    def open(cls, directory: Path = DEFAULT_KEYRING_DIR) -> LocalKeyring:
        """Open an existing keyring, refusing files that others than the owner could read."""
        directory = Path(directory)
        keks = _decode_keks(directory / KEKS_FILE)
        secret = _decode_pseudonym_secret(directory / PSEUDONYM_FILE)
        return cls(directory=directory, keks=keks, pseudonym_secret=secret)

    @classmethod
    def open_or_create(cls, directory: Path = DEFAULT_KEYRING_DIR, *, kek_id: str) -> LocalKeyring:
        """Open the keyring, creating it first if there is none (idempotent `stack up`)."""
        directory = Path(directory)
        if not (directory / KEKS_FILE).exists():
            with contextlib.suppress(_AlreadyExistsError):
                return cls.create(directory, kek_id=kek_id)
        ring = cls.open(directory)
        if ring._keks.kek_id != kek_id:
            raise KeyringError(
                f"the keyring in {directory} holds KEK {ring._keks.kek_id!r} but the settings ask "
                f"for {kek_id!r}: set EMR_ARCHIVE_KEYS__KEK_ID to the keyring's id"
            )
        return ring

    # --- KeyProvider -----------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    def current(self) -> KekRef:
        keks = self._keks
        return KekRef(keks.kek_id, keks.current)

    def wrap(self, data_key: bytes) -> WrappedKey:
        """AES key wrap (RFC 3394): deterministic, integrity-checked, the HSM/KMIP standard."""
        if len(data_key) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes, got {len(data_key)}")
        keks = self._keks
        kek = keks.versions[keks.current]
        return WrappedKey(KekRef(keks.kek_id, keks.current), keywrap.aes_key_wrap(kek, data_key))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        kek = self._kek(wrapped.kek)
        try:
            return keywrap.aes_key_unwrap(kek, wrapped.wrapped)
        except (keywrap.InvalidUnwrap, ValueError) as e:
            raise EnvelopeIntegrityError(
                f"the data key does not unwrap under KEK {wrapped.kek.kek_id} "
                f"v{wrapped.kek.version}: the object was altered or sealed with another keyring"
            ) from e

    def rotate(self) -> KekRef:
        """Add a new KEK version and make it current; older versions stay for decryption."""
        with _locked(self._directory):
            # Re-read under the lock: another process may have rotated since we opened.
            keks = _decode_keks(self._directory / KEKS_FILE)
            version = max(keks.versions) + 1
            versions = {**keks.versions, version: os.urandom(KEY_BYTES)}
            rotated = _KekSet(kek_id=keks.kek_id, current=version, versions=versions)
            _replace_file(self._directory / KEKS_FILE, _encode_keks(rotated))
            self._keks = rotated
        return KekRef(rotated.kek_id, version)

    def _kek(self, ref: KekRef) -> bytes:
        keks = self._keks
        if ref.kek_id == keks.kek_id and ref.version > max(keks.versions):
            # Another process may have rotated after we opened: look once more on disk.
            keks = self._keks = _decode_keks(self._directory / KEKS_FILE)
        if ref.kek_id != keks.kek_id or ref.version not in keks.versions:
            raise UnknownKeyError(
                f"KEK {ref.kek_id} v{ref.version} is not in the keyring at {self._directory} "
                f"(it holds {keks.kek_id} v1-v{max(keks.versions)}): restore the keyring from "
                "backup or use the keyring the object was sealed with"
            )
        return keks.versions[ref.version]

    # --- Pseudonymizer ---------------------------------------------------------------------------

    def pseudonym(self, patient_id: str) -> str:
        """HMAC-SHA256 of the NFC form, so the same name typed on two systems matches."""
        return _PSEUDONYM_PREFIX + self._keyed(_PSEUDONYM_DOMAIN, patient_id, "patient id")

    def record_token(self, record_id: str) -> str:
        """40 hex digits (160 bits) of a domain-separated HMAC: short enough for object keys."""
        return _RECORD_TOKEN_PREFIX + self._keyed(_RECORD_TOKEN_DOMAIN, record_id, "record id")[:38]

    def _keyed(self, domain: bytes, value: str, what: str) -> str:
        if not value:
            raise ValueError(f"{what} is empty")
        try:
            encoded: bytes | None = unicodedata.normalize("NFC", value).encode("utf-8")
        except UnicodeEncodeError:
            encoded = None
        if encoded is None:
            # Raised outside the handler: the UnicodeEncodeError quotes the input (PHI) and must
            # not ride along as __context__ into logs or error trackers.
            raise ValueError(f"{what} is not valid Unicode text")
        return hmac.new(self._pseudonym_secret, domain + encoded, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        keks = self._keks
        return f"LocalKeyring({str(self._directory)!r}, current={keks.kek_id} v{keks.current})"


# --- file format ----------------------------------------------------------------------------------


def _encode_keks(keks: _KekSet) -> bytes:
    return _dump(
        {
            "format": _KEKS_FORMAT,
            "format_version": FORMAT_VERSION,
            "kek_id": keks.kek_id,
            "current_version": keks.current,
            "versions": {str(v): _b64(k) for v, k in sorted(keks.versions.items())},
        }
    )


def _encode_pseudonym_secret(secret: bytes) -> bytes:
    return _dump(
        {"format": _PSEUDONYM_FORMAT, "format_version": FORMAT_VERSION, "secret": _b64(secret)}
    )


def _decode_keks(path: Path) -> _KekSet:
    doc = _load(path, _KEKS_FORMAT)
    kek_id = doc.get("kek_id")
    if not (isinstance(kek_id, str) and _KEK_ID.fullmatch(kek_id)):
        raise _invalid(path, "kek_id")
    raw_versions = doc.get("versions")
    if not isinstance(raw_versions, dict) or not raw_versions:
        raise _invalid(path, "versions")
    versions = {
        _version_number(name, path): _unb64(encoded, path, f"versions.{name}")
        for name, encoded in raw_versions.items()
    }
    current = doc.get("current_version")
    if isinstance(current, bool) or not isinstance(current, int) or current not in versions:
        raise _invalid(path, "current_version")
    return _KekSet(kek_id=kek_id, current=current, versions=versions)


def _version_number(name: object, path: Path) -> int:
    if not (isinstance(name, str) and name.isdecimal() and int(name) >= 1):
        raise _invalid(path, "versions")
    return int(name)


def _decode_pseudonym_secret(path: Path) -> bytes:
    missing = (
        f"{path} is missing: restore it from backup (a new secret would change every patient "
        "pseudonym and orphan the catalog)"
    )
    return _unb64(_load(path, _PSEUDONYM_FORMAT, missing).get("secret"), path, "secret")


def _load(path: Path, expected_format: str, missing: str | None = None) -> dict[str, Any]:
    raw = _read_private_file(path, missing or f"no keyring in {path.parent}: {_HOW_TO_CREATE}")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        # Only the parser's position is quoted, never the content: it holds keys.
        where = f"line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "encoding"
        raise KeyringError(f"{path} is not valid JSON ({where}): restore it from backup") from None
    if not isinstance(doc, dict) or doc.get("format") != expected_format:
        raise _invalid(path, "format")
    if doc.get("format_version") != FORMAT_VERSION:
        raise KeyringError(
            f"{path} has format_version {doc.get('format_version')!r}; this emr-archive reads "
            f"version {FORMAT_VERSION}: upgrade emr-archive"
        )
    return doc


def _invalid(path: Path, what: str) -> KeyringError:
    return KeyringError(f"{path} has a missing or invalid {what!r}: restore it from backup")


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _unb64(value: object, path: Path, what: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise _invalid(path, what)
    return key


# --- private files --------------------------------------------------------------------------------


class _AlreadyExistsError(KeyringError):
    """Lost a creation race to another process; the caller opens what that process wrote."""


def _make_private_dir(directory: Path) -> None:
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


def _create_file(path: Path, payload: bytes) -> None:
    """Write atomically, never replacing an existing file (a race loser must not clobber)."""
    _write_atomic(path, payload, publish=os.link)


def _replace_file(path: Path, payload: bytes) -> None:
    """Write atomically: readers and a crash see the old file or the new one, never a torn one."""
    _write_atomic(path, payload, publish=os.replace)


def _write_atomic(path: Path, payload: bytes, *, publish: Callable[[str, Path], None]) -> None:
    """Temp file in the same directory, fsync, publish (link or rename), fsync the directory."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
        _fsync_dir(path.parent)
    except FileExistsError:
        raise _AlreadyExistsError(f"{path} was created concurrently") from None
    except OSError as e:
        raise KeyringError(f"cannot write {path}: {e.strerror}") from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # after os.link this is a spare name; after os.replace it is gone


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry itself durable, not only the file's contents."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
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
