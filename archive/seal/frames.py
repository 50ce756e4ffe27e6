"""Authenticated frames: the keys derived from a data key, and AES-256-GCM over bounded slices.

Frames keep memory at O(frame size) for any object size. The AAD of every frame binds the whole
header, the object's identity (bucket, key, record id), the frame's position and whether it is
the last one, so altering, moving, reordering, truncating or extending a sealed object is
detected. The key commitment makes sure one sealed object can only ever open under one key.

Format version 1, after the header (:mod:`.header`; all integers unsigned big-endian)::

    frames, at least one; the last one, and only the last one, has kind 1
      1    kind              0 = more frames follow, 1 = final frame
      4    sealed_length     ciphertext + tag: F + 16 in non-final frames, 16..F + 16 in the final
      8    plaintext_length  final frame only: total bytes before compression
      ..   ciphertext || 16-byte GCM tag

    keys        prk        = HKDF-Extract(salt, data_key)
                frame_key  = HKDF-Expand(prk, "emr-archive/seal/v1/frame-key", 32)
                commitment = HKDF-Expand(prk, "emr-archive/seal/v1/commitment", 32)
    nonce       4 zero bytes || seq (u64; frames count from 0; the key is unique per object)
    aad         SHA-256(header) || identity || seq (u64) || kind (u8) || plaintext_length (u64, 0
                in non-final frames); identity = bucket, key, record_id each as u32 length || UTF-8

Frames hold consecutive slices of one zstd frame. The plaintext length in the final frame lets
the reader confirm the decompressed stream is complete without trusting zstd's end detection.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from archive.core.errors import (
    EnvelopeIntegrityError,
    KeyCommitmentError,
    SealError,
    UnknownKeyError,
)
from archive.seal.header import COMMITMENT_BYTES, SealHeader, read_exact
from archive.seal.keys import KEY_BYTES, KeyProvider, WrappedKey

_PREFIX = struct.Struct(">BI")  # kind, sealed_length
_U64 = struct.Struct(">Q")
_AAD_TAIL = struct.Struct(">QBQ")  # seq, kind, plaintext_length
_MORE, _FINAL = 0, 1
_TAG_BYTES = 16
_INFO_FRAME_KEY = b"emr-archive/seal/v1/frame-key"
_INFO_COMMITMENT = b"emr-archive/seal/v1/commitment"


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    """Where a sealed object belongs; bound into every frame, so a moved object will not open."""

    bucket: str
    key: str
    record_id: str


# --- keys -----------------------------------------------------------------------------------------


def derive(data_key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """Frame key and key commitment, independent outputs of one HKDF-SHA256 extraction."""
    prk = hmac.digest(salt, data_key, "sha256")
    frame_key = HKDFExpand(hashes.SHA256(), KEY_BYTES, _INFO_FRAME_KEY).derive(prk)
    commitment = HKDFExpand(hashes.SHA256(), COMMITMENT_BYTES, _INFO_COMMITMENT).derive(prk)
    return frame_key, commitment


def open_data_key(header: SealHeader, keys: KeyProvider) -> bytes:
    """Unwrap and check the commitment before any frame is decrypted; returns the frame key."""
    try:
        data_key = keys.unwrap(WrappedKey(header.kek, header.wrapped_key))
    except UnknownKeyError as e:
        # From the bytes alone, an altered KEK reference and a keyring missing that version look
        # the same; the cause is chained for whoever needs to tell them apart.
        raise EnvelopeIntegrityError(
            f"the object names KEK {header.kek.kek_id} v{header.kek.version}, which the key "
            "provider does not hold: the header was altered, or the keyring lacks that version "
            "(restore it from backup)"
        ) from e
    frame_key, commitment = derive(data_key, header.salt)
    if len(data_key) != KEY_BYTES or not hmac.compare_digest(commitment, header.commitment):
        raise KeyCommitmentError(
            "the unwrapped data key does not match the header's key commitment: the header was "
            "altered or assembled from another object"
        )
    return frame_key


def aad_prefix(raw_header: bytes, identity: ObjectIdentity) -> bytes:
    """The part of every frame's AAD that is the same for the whole object."""
    parts = [hashlib.sha256(raw_header).digest()]
    for value in (identity.bucket, identity.key, identity.record_id):
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise SealError("the object identity is not valid Unicode text") from None
        parts += (len(encoded).to_bytes(4, "big"), encoded)
    return b"".join(parts)


def _nonce(seq: int) -> bytes:
    return b"\x00\x00\x00\x00" + _U64.pack(seq)


# --- frames ---------------------------------------------------------------------------------------


class FrameWriter:
    """Cuts the compressed stream into frames; the last one is held back until its end is known."""

    def __init__(self, dst: BinaryIO, *, key: bytes, aad_prefix: bytes, header: SealHeader) -> None:
        self._dst, self._aead, self._aad_prefix = dst, AESGCM(key), aad_prefix
        self._frame_size = header.frame_size
        self._pending = bytearray()
        self.count = self.compressed_bytes = self.sealed_bytes = 0

    def add(self, compressed: bytes) -> None:
        self._pending += compressed
        self.compressed_bytes += len(compressed)
        # Strictly greater: a frame is only "not final" once we know something follows it.
        while len(self._pending) > self._frame_size:
            self._emit(bytes(self._pending[: self._frame_size]), _MORE, 0)
            del self._pending[: self._frame_size]

    def finish(self, plaintext_bytes: int) -> None:
        self._emit(bytes(self._pending), _FINAL, plaintext_bytes)
        self._pending.clear()

    def _emit(self, chunk: bytes, kind: int, plaintext_bytes: int) -> None:
        aad = self._aad_prefix + _AAD_TAIL.pack(self.count, kind, plaintext_bytes)
        sealed = self._aead.encrypt(_nonce(self.count), chunk, aad)
        prefix = _PREFIX.pack(kind, len(sealed))
        if kind == _FINAL:
            prefix += _U64.pack(plaintext_bytes)
        self._dst.write(prefix)
        self._dst.write(sealed)
        self.count += 1
        self.sealed_bytes += len(prefix) + len(sealed)


class FrameReader:
    """A ``read(size)`` source of authenticated compressed bytes for the zstd decompressor."""

    def __init__(self, src: BinaryIO, *, key: bytes, aad_prefix: bytes, header: SealHeader) -> None:
        self._src, self._aead, self._aad_prefix = src, AESGCM(key), aad_prefix
        self._frame_size = header.frame_size
        self._buffer, self._pos = b"", 0
        self.count = 0
        self.declared_plaintext: int | None = None  # set by the final frame

    def read(self, size: int = -1) -> bytes:
        while self._pos >= len(self._buffer):
            if self.declared_plaintext is not None:
                return b""
            self._buffer, self._pos = self._next_frame(), 0
        end = len(self._buffer) if size < 0 else self._pos + size
        chunk = self._buffer[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def check_complete(self, plaintext_bytes: int) -> None:
        """Called once zstd reports the end: every frame must be used and the length must agree."""
        if self.declared_plaintext is None or self._pos < len(self._buffer):
            raise EnvelopeIntegrityError(
                "the compressed stream ends before the sealed object does: it was not written by "
                "emr-archive's sealer"
            )
        if plaintext_bytes != self.declared_plaintext:
            raise EnvelopeIntegrityError(
                f"the object decompresses to {plaintext_bytes} bytes but was sealed with "
                f"{self.declared_plaintext}: its compressed stream is incomplete"
            )

    def _next_frame(self) -> bytes:
        seq = self.count
        prefix = read_exact(self._src, _PREFIX.size)
        if not prefix:
            where = f"frame {seq - 1}" if seq else "its header"
            raise EnvelopeIntegrityError(
                f"the sealed object ends after {where}, without a final frame: it was truncated"
            )
        if len(prefix) < _PREFIX.size:
            raise EnvelopeIntegrityError(f"the sealed object is truncated inside frame {seq}")
        kind, sealed_length = _PREFIX.unpack(prefix)
        self._check_frame_shape(seq, kind, sealed_length)
        total = _U64.unpack(self._read_part(_U64.size, seq))[0] if kind == _FINAL else 0
        aad = self._aad_prefix + _AAD_TAIL.pack(seq, kind, total)
        try:
            chunk = self._aead.decrypt(_nonce(seq), self._read_part(sealed_length, seq), aad)
        except InvalidTag as e:
            raise EnvelopeIntegrityError(
                f"frame {seq} failed authentication: the object was altered, reordered, moved to "
                "another bucket, key or record, or combined with parts of another object"
            ) from e
        self.count += 1
        if kind == _FINAL:
            if self._src.read(1):
                raise EnvelopeIntegrityError(
                    "there are bytes after the final frame: it was extended"
                )
            self.declared_plaintext = total
        return chunk

    def _check_frame_shape(self, seq: int, kind: int, sealed_length: int) -> None:
        full = self._frame_size + _TAG_BYTES
        if kind == _MORE and sealed_length == full:
            return
        if kind == _FINAL and _TAG_BYTES <= sealed_length <= full:
            return
        raise EnvelopeIntegrityError(
            f"frame {seq} has an impossible kind ({kind}) or length ({sealed_length}): the object "
            "was altered"
        )

    def _read_part(self, size: int, seq: int) -> bytes:
        data = read_exact(self._src, size)
        if len(data) < size:
            raise EnvelopeIntegrityError(f"the sealed object is truncated inside frame {seq}")
        return data
