"""The sealed envelope: zstd, then AES-256-GCM in authenticated frames, under a per-object key.

Each object gets a fresh random 32-byte data key, wrapped by the current KEK of a
:class:`~archive.keys.KeyProvider`. Frames keep memory at O(frame size) for any object size. The
AAD of every frame binds the whole header, the object's identity (bucket, key, record id), the
frame's position and whether it is the last one, so altering, moving, reordering, truncating or
extending a sealed object is detected. The header's key commitment makes sure one sealed object can
only ever open under one key.

Format version 1, byte layout (all integers unsigned big-endian)::

    header
      off  size  field
      0    8     magic            89 45 4D 52 53 45 41 4C  ("\\x89EMRSEAL")
      8    2     format_version   1
      10   2     algorithm        1 = zstd, HKDF-SHA256, AES-256-GCM, HKDF key commitment
      12   2     header_length    of the whole header; parsing must consume exactly this much
      14   4     frame_size       F, compressed bytes per non-final frame, 4096 <= F <= 64 MiB
      18   4     kek_version
      22   2     kek_id_length    n, 1..255
      24   n     kek_id           ASCII
      24+n 2     wrapped_length   m, 16..2048
      26+n m     wrapped_key      the data key wrapped by the KEK (RFC 3394 for LocalKeyring)
      ..   32    salt             random per object
      ..   32    commitment       see below

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

A streaming reader can only know an object is whole at its end: callers of :func:`unseal_stream`
must discard what it wrote when it raises; :func:`unseal_to_path` and :func:`unseal` do that.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from archive.core.errors import (
    DecompressionLimitError,
    EnvelopeFormatError,
    EnvelopeIntegrityError,
    KeyCommitmentError,
    SealError,
    UnknownKeyError,
)
from archive.core.settings import SealSettings
from archive.seal.keys import KekRef, KeyProvider, WrappedKey

MAGIC = b"\x89EMRSEAL"
FORMAT_VERSION = 1
ALGORITHM = 1

_FIXED = struct.Struct(">8sHHHIIH")  # magic .. kek_id_length
_U16 = struct.Struct(">H")
_PREFIX = struct.Struct(">BI")  # kind, sealed_length
_U64 = struct.Struct(">Q")
_AAD_TAIL = struct.Struct(">QBQ")  # seq, kind, plaintext_length
_MORE, _FINAL = 0, 1
_KEY_BYTES = _SALT_BYTES = _COMMITMENT_BYTES = 32
_TAG_BYTES = 16
_MIN_FRAME, _MAX_FRAME = 4096, 64 * 1024 * 1024
_MAX_KEK_ID, _MIN_WRAPPED, _MAX_WRAPPED = 255, 16, 2048
_MIN_HEADER = _FIXED.size + 1 + _U16.size + _MIN_WRAPPED + _SALT_BYTES + _COMMITMENT_BYTES
_MAX_HEADER = _FIXED.size + _MAX_KEK_ID + _U16.size + _MAX_WRAPPED + _SALT_BYTES + _COMMITMENT_BYTES
_INFO_FRAME_KEY = b"emr-archive/seal/v1/frame-key"
_INFO_COMMITMENT = b"emr-archive/seal/v1/commitment"
_IO_CHUNK = 256 * 1024
_OUT_CHUNK = 128 * 1024  # zstd's block size: decompressed output is taken this much at a time
_MAX_WINDOW = 1 << 24  # 2x the largest window zstd uses at level 19; bigger ones are refused


@dataclass(frozen=True, slots=True)
class ObjectIdentity:
    """Where a sealed object belongs; bound into every frame, so a moved object will not open."""

    bucket: str
    key: str
    record_id: str


@dataclass(frozen=True, slots=True)
class SealHeader:
    """The parsed, unauthenticated header: enough for the catalog and the verifier to plan."""

    format_version: int
    algorithm: int
    frame_size: int
    kek: KekRef
    length: int  # header bytes; the first frame starts here
    wrapped_key: bytes = field(repr=False)
    salt: bytes = field(repr=False)
    commitment: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SealInfo:
    """What was written; ``sealed_bytes`` is the object's size in the store."""

    header: SealHeader
    plaintext_bytes: int
    compressed_bytes: int
    sealed_bytes: int
    frames: int


@dataclass(frozen=True, slots=True)
class UnsealInfo:
    """What was opened; only returned once every frame authenticated and the length matched."""

    header: SealHeader
    plaintext_bytes: int
    frames: int


# --- public API -----------------------------------------------------------------------------------


def seal(
    data: bytes, *, identity: ObjectIdentity, keys: KeyProvider, settings: SealSettings
) -> bytes:
    """Seal bytes held in memory (documents of tens of KB) through :func:`seal_stream`."""
    out = io.BytesIO()
    seal_stream(io.BytesIO(data), out, identity=identity, keys=keys, settings=settings)
    return out.getvalue()


def unseal(
    sealed: bytes, *, identity: ObjectIdentity, keys: KeyProvider, settings: SealSettings
) -> bytes:
    """Open a sealed object held in memory; on any error nothing of the plaintext escapes."""
    out = io.BytesIO()
    unseal_stream(io.BytesIO(sealed), out, identity=identity, keys=keys, settings=settings)
    return out.getvalue()


def seal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    identity: ObjectIdentity,
    keys: KeyProvider,
    settings: SealSettings,
) -> SealInfo:
    """Seal ``src`` into ``dst`` holding O(frame_size) in memory, whatever the size."""
    data_key, salt = os.urandom(_KEY_BYTES), os.urandom(_SALT_BYTES)
    frame_key, commitment = _derive(data_key, salt)
    raw = _encode_header(settings.frame_size, keys.wrap(data_key), salt, commitment)
    header = _parse_header(raw)
    dst.write(raw)
    frames = _FrameWriter(dst, key=frame_key, aad_prefix=_aad_prefix(raw, identity), header=header)
    with _compressor(settings.zstd_level) as cctx:
        plaintext_bytes = _compress(src, frames, cctx, limit=settings.max_plaintext_bytes)
    frames.finish(plaintext_bytes)
    return SealInfo(
        header=header,
        plaintext_bytes=plaintext_bytes,
        compressed_bytes=frames.compressed_bytes,
        sealed_bytes=header.length + frames.sealed_bytes,
        frames=frames.count,
    )


def unseal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    identity: ObjectIdentity,
    keys: KeyProvider,
    settings: SealSettings,
) -> UnsealInfo:
    """Open ``src`` into ``dst`` in O(frame_size) memory.

    Plaintext reaches ``dst`` frame by frame, before the end of the object proves it whole: if
    this raises, the caller must discard everything written to ``dst``. Only
    ``settings.max_plaintext_bytes`` is used; the frame size comes from the header.
    """
    raw = _read_raw_header(src)
    header = _parse_header(raw)
    frame_key = _open_data_key(header, keys)
    frames = _FrameReader(src, key=frame_key, aad_prefix=_aad_prefix(raw, identity), header=header)
    with _decompressor() as dctx:
        written = _decompress(frames, dst, dctx, limit=settings.max_plaintext_bytes)
    frames.check_complete(written)
    return UnsealInfo(header=header, plaintext_bytes=written, frames=frames.count)


def unseal_to_path(
    src: BinaryIO,
    path: Path,
    *,
    identity: ObjectIdentity,
    keys: KeyProvider,
    settings: SealSettings,
) -> UnsealInfo:
    """Open ``src`` into the file ``path``, which appears only if the whole object is authentic.

    The plaintext goes to a private (0600) temporary file beside ``path`` that is renamed into
    place on success and deleted on any failure.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".unsealing")
    try:
        with os.fdopen(fd, "wb") as out:
            info = unseal_stream(src, out, identity=identity, keys=keys, settings=settings)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return info


def read_header(sealed_prefix: bytes | BinaryIO) -> SealHeader:
    """Parse the header strictly, without keys; a stream is left positioned at the first frame.

    Nothing here is authenticated yet: it tells which KEK an object needs, not that it is intact.
    """
    if isinstance(sealed_prefix, bytes | bytearray | memoryview):
        sealed_prefix = io.BytesIO(sealed_prefix)
    return _parse_header(_read_raw_header(sealed_prefix))


# --- header ---------------------------------------------------------------------------------------


def _encode_header(frame_size: int, wrapped: WrappedKey, salt: bytes, commitment: bytes) -> bytes:
    kek_id = wrapped.kek.kek_id.encode("utf-8")
    if not (kek_id.isascii() and 1 <= len(kek_id) <= _MAX_KEK_ID):
        raise SealError("the key provider's KEK id must be 1-255 ASCII characters")
    if not _MIN_WRAPPED <= len(wrapped.wrapped) <= _MAX_WRAPPED:
        raise SealError("the key provider returned a wrapped key of an unsupported length")
    key_material = len(wrapped.wrapped) + _SALT_BYTES + _COMMITMENT_BYTES
    length = _FIXED.size + len(kek_id) + _U16.size + key_material
    fixed = _FIXED.pack(
        MAGIC, FORMAT_VERSION, ALGORITHM, length, frame_size, wrapped.kek.version, len(kek_id)
    )
    wrapped_length = _U16.pack(len(wrapped.wrapped))
    return b"".join((fixed, kek_id, wrapped_length, wrapped.wrapped, salt, commitment))


def _read_raw_header(src: BinaryIO) -> bytes:
    """Read exactly the header's bytes, checking what tells how to read the rest first."""
    fixed = _read_exact(src, _FIXED.size)
    if fixed[: len(MAGIC)] != MAGIC:
        raise EnvelopeFormatError("not a sealed emr-archive object (wrong magic bytes)")
    if len(fixed) < _FIXED.size:
        raise EnvelopeFormatError("the sealed object is truncated inside its header")
    _, version, algorithm, length, *_ = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise EnvelopeFormatError(
            f"envelope format version {version} is not supported (this emr-archive reads "
            f"{FORMAT_VERSION}): upgrade emr-archive"
        )
    if algorithm != ALGORITHM:
        raise EnvelopeFormatError(f"envelope algorithm {algorithm} is unknown")
    _check_range("header length", length, _MIN_HEADER, _MAX_HEADER)
    rest = _read_exact(src, length - _FIXED.size)
    if len(rest) < length - _FIXED.size:
        raise EnvelopeFormatError("the sealed object is truncated inside its header")
    return fixed + rest


def _parse_header(raw: bytes) -> SealHeader:
    """Split a header read by :func:`_read_raw_header`; every length must add up exactly."""
    _, version, algorithm, length, frame_size, kek_version, id_length = _FIXED.unpack_from(raw)
    _check_range("frame size", frame_size, _MIN_FRAME, _MAX_FRAME)
    _check_range("KEK id length", id_length, 1, _MAX_KEK_ID)
    kek_id, pos = raw[_FIXED.size : _FIXED.size + id_length], _FIXED.size + id_length
    wrapped_length = int.from_bytes(raw[pos : pos + _U16.size], "big")
    _check_range("wrapped key length", wrapped_length, _MIN_WRAPPED, _MAX_WRAPPED)
    wrapped, pos = raw[pos + 2 : pos + 2 + wrapped_length], pos + 2 + wrapped_length
    salt, commitment = raw[pos : pos + _SALT_BYTES], raw[pos + _SALT_BYTES :]
    if len(wrapped) != wrapped_length or len(commitment) != _COMMITMENT_BYTES:
        raise EnvelopeFormatError("the header's field lengths do not add up to its length")
    if not kek_id.isascii():
        raise EnvelopeFormatError("the header's KEK id is not ASCII")
    return SealHeader(
        format_version=version,
        algorithm=algorithm,
        frame_size=frame_size,
        kek=KekRef(kek_id.decode("ascii"), kek_version),
        length=length,
        wrapped_key=wrapped,
        salt=salt,
        commitment=commitment,
    )


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise EnvelopeFormatError(f"impossible {what} {value} in the header (allowed {low}-{high})")


# --- keys -----------------------------------------------------------------------------------------


def _derive(data_key: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """Frame key and key commitment, independent outputs of one HKDF-SHA256 extraction."""
    prk = hmac.digest(salt, data_key, "sha256")
    frame_key = HKDFExpand(hashes.SHA256(), _KEY_BYTES, _INFO_FRAME_KEY).derive(prk)
    commitment = HKDFExpand(hashes.SHA256(), _COMMITMENT_BYTES, _INFO_COMMITMENT).derive(prk)
    return frame_key, commitment


def _open_data_key(header: SealHeader, keys: KeyProvider) -> bytes:
    """Unwrap and check the commitment before any frame is decrypted."""
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
    frame_key, commitment = _derive(data_key, header.salt)
    if len(data_key) != _KEY_BYTES or not hmac.compare_digest(commitment, header.commitment):
        raise KeyCommitmentError(
            "the unwrapped data key does not match the header's key commitment: the header was "
            "altered or assembled from another object"
        )
    return frame_key


def _aad_prefix(raw_header: bytes, identity: ObjectIdentity) -> bytes:
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


class _FrameWriter:
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


class _FrameReader:
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
        prefix = _read_exact(self._src, _PREFIX.size)
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
        data = _read_exact(self._src, size)
        if len(data) < size:
            raise EnvelopeIntegrityError(f"the sealed object is truncated inside frame {seq}")
        return data


# --- compression ----------------------------------------------------------------------------------

# Compressor/decompressor contexts are reused (creating one costs as much as sealing a small
# document) but never shared: list.pop/append are atomic, so each thread, and each nested use,
# borrows its own.
_compressors: dict[int, list[zstandard.ZstdCompressor]] = {}
_decompressors: list[zstandard.ZstdDecompressor] = []
_Codec = TypeVar("_Codec")


def _compressor(level: int) -> contextlib.AbstractContextManager[zstandard.ZstdCompressor]:
    return _borrow(
        _compressors.setdefault(level, []), lambda: zstandard.ZstdCompressor(level=level)
    )


def _decompressor() -> contextlib.AbstractContextManager[zstandard.ZstdDecompressor]:
    return _borrow(_decompressors, lambda: zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW))


@contextlib.contextmanager
def _borrow(free: list[_Codec], make: Callable[[], _Codec]) -> Iterator[_Codec]:
    try:
        codec = free.pop()
    except IndexError:
        codec = make()
    yield codec
    free.append(codec)  # only after success: a context that raised mid-stream is dropped


def _compress(
    src: BinaryIO, frames: _FrameWriter, cctx: zstandard.ZstdCompressor, *, limit: int
) -> int:
    compressor = cctx.compressobj()
    total = 0
    while chunk := src.read(_IO_CHUNK):
        total += len(chunk)
        if total > limit:
            raise DecompressionLimitError(
                f"the plaintext exceeds max_plaintext_bytes={limit}: it could not be unsealed "
                "with these settings (raise EMR_ARCHIVE_SEAL__MAX_PLAINTEXT_BYTES if intended)"
            )
        frames.add(compressor.compress(chunk))
    frames.add(compressor.flush())
    return total


def _decompress(
    frames: _FrameReader, dst: BinaryIO, dctx: zstandard.ZstdDecompressor, *, limit: int
) -> int:
    """Decompress in bounded steps, refusing as soon as the output would pass ``limit``."""
    source = cast(BinaryIO, frames)  # zstandard only ever calls its read(size)
    reader = dctx.stream_reader(source, read_size=_IO_CHUNK, read_across_frames=False)
    total = 0
    try:
        while chunk := reader.read(_OUT_CHUNK):
            total += len(chunk)
            if total > limit:
                raise DecompressionLimitError(
                    f"the object decompresses to more than max_plaintext_bytes={limit}: refused "
                    "(a decompression bomb, or raise EMR_ARCHIVE_SEAL__MAX_PLAINTEXT_BYTES)"
                )
            dst.write(chunk)
    except zstandard.ZstdError as e:
        raise EnvelopeIntegrityError(
            "the authenticated content is not a valid zstd stream: it was not written by "
            "emr-archive's sealer"
        ) from e
    return total


# --- io -------------------------------------------------------------------------------------------


def _read_exact(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes unless the stream ends first (sockets and raw files return short)."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining and (more := src.read(remaining)):
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)
