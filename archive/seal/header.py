"""The sealed object's header: what a reader needs before it holds any key, and its byte layout.

The header names the KEK that wrapped the object's data key, carries the wrapped key, the salt
and the key commitment, and fixes the frame size. It is parsed strictly, every length checked
against its bounds before anything is read past it, because it is read before anything is
authenticated: a corrupted or hostile header must fail here, not in an allocation or a KEK
look-up. It is authenticated later, as a hash inside every frame's AAD (:mod:`.frames`).

Format version 1, byte layout (all integers unsigned big-endian)::

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
    ..   32    commitment       see :mod:`.frames`
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from archive.core.errors import EnvelopeFormatError, SealError
from archive.seal.keys import KekRef, WrappedKey

MAGIC = b"\x89EMRSEAL"
FORMAT_VERSION = 1
ALGORITHM = 1
SALT_BYTES = COMMITMENT_BYTES = 32

_FIXED = struct.Struct(">8sHHHIIH")  # magic .. kek_id_length
_U16 = struct.Struct(">H")
_MIN_FRAME, _MAX_FRAME = 4096, 64 * 1024 * 1024
_MAX_KEK_ID, _MIN_WRAPPED, _MAX_WRAPPED = 255, 16, 2048
_MIN_HEADER = _FIXED.size + 1 + _U16.size + _MIN_WRAPPED + SALT_BYTES + COMMITMENT_BYTES
_MAX_HEADER = _FIXED.size + _MAX_KEK_ID + _U16.size + _MAX_WRAPPED + SALT_BYTES + COMMITMENT_BYTES


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


def encode_header(frame_size: int, wrapped: WrappedKey, salt: bytes, commitment: bytes) -> bytes:
    """The header's bytes; refuses what a provider returned if the format cannot hold it."""
    kek_id = wrapped.kek.kek_id.encode("utf-8")
    if not (kek_id.isascii() and 1 <= len(kek_id) <= _MAX_KEK_ID):
        raise SealError("the key provider's KEK id must be 1-255 ASCII characters")
    if not _MIN_WRAPPED <= len(wrapped.wrapped) <= _MAX_WRAPPED:
        raise SealError("the key provider returned a wrapped key of an unsupported length")
    key_material = len(wrapped.wrapped) + SALT_BYTES + COMMITMENT_BYTES
    length = _FIXED.size + len(kek_id) + _U16.size + key_material
    fixed = _FIXED.pack(
        MAGIC, FORMAT_VERSION, ALGORITHM, length, frame_size, wrapped.kek.version, len(kek_id)
    )
    wrapped_length = _U16.pack(len(wrapped.wrapped))
    return b"".join((fixed, kek_id, wrapped_length, wrapped.wrapped, salt, commitment))


def read_raw_header(src: BinaryIO) -> bytes:
    """Read exactly the header's bytes, checking what tells how to read the rest first."""
    fixed = read_exact(src, _FIXED.size)
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
    rest = read_exact(src, length - _FIXED.size)
    if len(rest) < length - _FIXED.size:
        raise EnvelopeFormatError("the sealed object is truncated inside its header")
    return fixed + rest


def parse_header(raw: bytes) -> SealHeader:
    """Split a header read by :func:`read_raw_header`; every length must add up exactly."""
    _, version, algorithm, length, frame_size, kek_version, id_length = _FIXED.unpack_from(raw)
    _check_range("frame size", frame_size, _MIN_FRAME, _MAX_FRAME)
    _check_range("KEK id length", id_length, 1, _MAX_KEK_ID)
    kek_id, pos = raw[_FIXED.size : _FIXED.size + id_length], _FIXED.size + id_length
    wrapped_length = int.from_bytes(raw[pos : pos + _U16.size], "big")
    _check_range("wrapped key length", wrapped_length, _MIN_WRAPPED, _MAX_WRAPPED)
    wrapped, pos = raw[pos + 2 : pos + 2 + wrapped_length], pos + 2 + wrapped_length
    salt, commitment = raw[pos : pos + SALT_BYTES], raw[pos + SALT_BYTES :]
    if len(wrapped) != wrapped_length or len(commitment) != COMMITMENT_BYTES:
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


def read_exact(src: BinaryIO, size: int) -> bytes:
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
