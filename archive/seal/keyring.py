"""The default key store: KEKs and the pseudonym secret in two files of a private directory.

:class:`LocalKeyring` is both a :class:`~archive.seal.keys.KeyProvider` (AES key wrap, RFC 3394,
under versioned KEKs that rotate but are never removed) and a
:class:`~archive.seal.pseudonyms.Pseudonymizer` (under a secret that never changes). The files and
their format are :mod:`archive.seal.keyfiles`; this module decides when they are created, read
again and rotated, so that several processes can share one keyring.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import keywrap

from archive.core.errors import EnvelopeIntegrityError, KeyringError, UnknownKeyError
from archive.seal.keyfiles import (
    KEK_ID,
    KEKS_FILE,
    PSEUDONYM_FILE,
    AlreadyExistsError,
    KekSet,
    create_file,
    decode_keks,
    decode_pseudonym_secret,
    encode_keks,
    encode_pseudonym_secret,
    locked,
    make_private_dir,
    replace_file,
)
from archive.seal.keys import KEY_BYTES, KekRef, WrappedKey
from archive.seal.pseudonyms import SecretPseudonyms

DEFAULT_KEYRING_DIR = Path("var/keys")


class LocalKeyring(SecretPseudonyms):
    """KEKs and the pseudonym secret in files under a private directory.

    Build with :meth:`create`, :meth:`open` or :meth:`open_or_create`. Safe to share between
    threads; rotation from several processes is serialised with a lock on the directory.
    """

    def __init__(self, *, directory: Path, keks: KekSet, pseudonym_secret: bytes) -> None:
        super().__init__(pseudonym_secret)
        self._directory = directory
        self._keks = keks  # replaced as a whole (never mutated) so readers need no lock

    # --- factories -------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path = DEFAULT_KEYRING_DIR, *, kek_id: str) -> LocalKeyring:
        """Create a new keyring; refuses if one already exists (it would orphan sealed objects)."""
        if not KEK_ID.fullmatch(kek_id):
            raise KeyringError(f"KEK id {kek_id!r} is invalid: use 1-64 of A-Z a-z 0-9 . _ -")
        directory = Path(directory)
        make_private_dir(directory)
        for name in (KEKS_FILE, PSEUDONYM_FILE):
            if (directory / name).exists():
                raise KeyringError(
                    f"{directory / name} already exists: open the existing keyring instead of "
                    "creating one (a new keyring cannot open objects sealed under the old one)"
                )
        secret = os.urandom(KEY_BYTES)
        keks = KekSet(kek_id=kek_id, current=1, versions={1: os.urandom(KEY_BYTES)})
        # Pseudonym file first: a keyring "exists" once keks.json does, so it is written last.
        create_file(directory / PSEUDONYM_FILE, encode_pseudonym_secret(secret))
        create_file(directory / KEKS_FILE, encode_keks(keks))
        return cls(directory=directory, keks=keks, pseudonym_secret=secret)

    @classmethod
    def open(cls, directory: Path = DEFAULT_KEYRING_DIR) -> LocalKeyring:
        """Open an existing keyring, refusing files that others than the owner could read."""
        directory = Path(directory)
        keks = decode_keks(directory / KEKS_FILE)
        secret = decode_pseudonym_secret(directory / PSEUDONYM_FILE)
        return cls(directory=directory, keks=keks, pseudonym_secret=secret)

    @classmethod
    def open_or_create(cls, directory: Path = DEFAULT_KEYRING_DIR, *, kek_id: str) -> LocalKeyring:
        """Open the keyring, creating it first if there is none (idempotent `stack up`)."""
        directory = Path(directory)
        if not (directory / KEKS_FILE).exists():
            with contextlib.suppress(AlreadyExistsError):
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

    def kek_versions(self) -> dict[int, bytes]:
        """Every KEK version's material, for ``keys init`` importing them into another provider."""
        return dict(self._keks.versions)

    @property
    def pseudonym_secret(self) -> bytes:
        """For ``keys init`` moving the secret under another provider; never logged."""
        return self._pseudonym_secret

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
        with locked(self._directory):
            # Re-read under the lock: another process may have rotated since we opened.
            keks = decode_keks(self._directory / KEKS_FILE)
            version = max(keks.versions) + 1
            versions = {**keks.versions, version: os.urandom(KEY_BYTES)}
            rotated = KekSet(kek_id=keks.kek_id, current=version, versions=versions)
            replace_file(self._directory / KEKS_FILE, encode_keks(rotated))
            self._keks = rotated
        return KekRef(rotated.kek_id, version)

    def _kek(self, ref: KekRef) -> bytes:
        keks = self._keks
        if ref.kek_id == keks.kek_id and ref.version > max(keks.versions):
            # Another process may have rotated after we opened: look once more on disk.
            keks = self._keks = decode_keks(self._directory / KEKS_FILE)
        if ref.kek_id != keks.kek_id or ref.version not in keks.versions:
            raise UnknownKeyError(
                f"KEK {ref.kek_id} v{ref.version} is not in the keyring at {self._directory} "
                f"(it holds {keks.kek_id} v1-v{max(keks.versions)}): restore the keyring from "
                "backup or use the keyring the object was sealed with"
            )
        return keks.versions[ref.version]

    def __repr__(self) -> str:
        keks = self._keks
        return f"LocalKeyring({str(self._directory)!r}, current={keks.kek_id} v{keks.current})"
