"""Sealing and unsealing: bytes or a stream in, a sealed object out (and back), in bounded memory.

Each object gets a fresh random 32-byte data key, wrapped by the current KEK of a
:class:`~archive.seal.keys.KeyProvider` and written in the header (:mod:`.header`); the plaintext
is compressed with zstd and the compressed stream cut into authenticated frames (:mod:`.frames`).
This module drives the two in both directions and owns the compression, including the limit
that refuses decompression bombs.

A streaming reader can only know an object is whole at its end: callers of :func:`unseal_stream`
must discard what it wrote when it raises; :func:`unseal_to_path` and :func:`unseal` do that.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import zstandard

from archive.core.atomic import PRIVATE, atomic_writer
from archive.core.errors import DecompressionLimitError, EnvelopeIntegrityError
from archive.core.settings import SealSettings
from archive.seal.frames import (
    FrameReader,
    FrameWriter,
    ObjectIdentity,
    aad_prefix,
    derive,
    open_data_key,
)
from archive.seal.header import (
    SALT_BYTES,
    SealHeader,
    encode_header,
    parse_header,
    read_raw_header,
)
from archive.seal.keys import KEY_BYTES, KeyProvider

_IO_CHUNK = 256 * 1024
_OUT_CHUNK = 128 * 1024  # zstd's block size: decompressed output is taken this much at a time
_MAX_WINDOW = 1 << 24  # 2x the largest window zstd uses at level 19; bigger ones are refused


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
    data_key, salt = os.urandom(KEY_BYTES), os.urandom(SALT_BYTES)
    frame_key, commitment = derive(data_key, salt)
    raw = encode_header(settings.frame_size, keys.wrap(data_key), salt, commitment)
    header = parse_header(raw)
    dst.write(raw)
    frames = FrameWriter(dst, key=frame_key, aad_prefix=aad_prefix(raw, identity), header=header)
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
    raw = read_raw_header(src)
    header = parse_header(raw)
    frame_key = open_data_key(header, keys)
    frames = FrameReader(src, key=frame_key, aad_prefix=aad_prefix(raw, identity), header=header)
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
    with atomic_writer(Path(path), mode=PRIVATE) as out:
        return unseal_stream(src, out, identity=identity, keys=keys, settings=settings)


def read_header(sealed_prefix: bytes | BinaryIO) -> SealHeader:
    """Parse the header strictly, without keys; a stream is left positioned at the first frame.

    Nothing here is authenticated yet: it tells which KEK an object needs, not that it is intact.
    """
    if isinstance(sealed_prefix, bytes | bytearray | memoryview):
        sealed_prefix = io.BytesIO(sealed_prefix)
    return parse_header(read_raw_header(sealed_prefix))


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
    src: BinaryIO, frames: FrameWriter, cctx: zstandard.ZstdCompressor, *, limit: int
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
    frames: FrameReader, dst: BinaryIO, dctx: zstandard.ZstdDecompressor, *, limit: int
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
