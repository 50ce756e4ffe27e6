"""The sealed envelope: round trips, the tamper matrix, bounded memory, zstd bombs.

Real crypto and a real LocalKeyring in tmp_path. The byte positions used to tamper come from the
layout documented in archive/seal/header.py and frames.py, parsed here independently of the
implementation.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import stat
import struct
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from archive.core.errors import (
    DecompressionLimitError,
    EnvelopeFormatError,
    EnvelopeIntegrityError,
    KeyCommitmentError,
    SealError,
    UnknownKeyError,
)
from archive.core.settings import SealSettings
from archive.seal import (
    MAGIC,
    KekRef,
    LocalKeyring,
    ObjectIdentity,
    read_header,
    seal,
    seal_stream,
    unseal,
    unseal_stream,
    unseal_to_path,
)
from archive.seal.frames import FrameWriter

KEK_ID = "test-kek"
FRAME = 4096
SMALL = SealSettings(frame_size=FRAME)
IDENT = ObjectIdentity(
    bucket="emr-archive", key="records/2025/11/enc-1.pdf.sealed", record_id="enc-1"
)
MiB = 1024 * 1024
Outcome = type[BaseException] | None


@pytest.fixture
def ring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring.create(tmp_path / "keys", kek_id=KEK_ID)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def plaintext() -> bytes:
    return os.urandom(3 * FRAME + 1500)  # incompressible: 4 frames, the last one partial


@pytest.fixture
def sealed(plaintext: bytes, ring: LocalKeyring) -> bytes:
    return seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)


# --- helpers: the documented layout, and "refused without plaintext" -----------------------------


def frame_spans(sealed: bytes) -> list[tuple[int, int, int]]:
    """(start, ciphertext start, end) of every frame, from the documented byte layout."""
    pos, spans = read_header(sealed).length, []
    while True:
        kind, length = struct.unpack_from(">BI", sealed, pos)
        body = pos + 5 + (8 if kind == 1 else 0)
        spans.append((pos, body, body + length))
        pos = body + length
        if kind == 1:
            assert pos == len(sealed)
            return spans


def flip(data: bytes, position: int, bit: int = 0) -> bytes:
    altered = bytearray(data)
    altered[position] ^= 1 << bit
    return bytes(altered)


def outcome(
    sealed: bytes,
    keys: LocalKeyring,
    out_dir: Path,
    *,
    identity: ObjectIdentity = IDENT,
    settings: SealSettings = SMALL,
) -> Outcome:
    """The SealError class unseal raises, or None if it returned plaintext.

    unseal_to_path must raise the same and leave neither the target nor a temporary file.
    """
    try:
        unseal(sealed, identity=identity, keys=keys, settings=settings)
    except SealError as e:
        error: type[BaseException] = type(e)
    else:
        return None
    target = out_dir / "record.pdf"
    with pytest.raises(error):
        unseal_to_path(io.BytesIO(sealed), target, identity=identity, keys=keys, settings=settings)
    assert list(out_dir.iterdir()) == []
    return error


def assert_refused(
    sealed: bytes,
    keys: LocalKeyring,
    out_dir: Path,
    expected: type[SealError] = EnvelopeIntegrityError,
    *,
    identity: ObjectIdentity = IDENT,
) -> None:
    got = outcome(sealed, keys, out_dir, identity=identity)
    assert got is not None
    assert issubclass(got, expected), got


def header_fields(sealed: bytes) -> dict[str, slice]:
    header = read_header(sealed)
    id_end = 24 + len(header.kek.kek_id)
    wrapped = slice(id_end + 2, id_end + 2 + len(header.wrapped_key))
    return {
        "kek_version": slice(18, 22),
        "wrapped_key": wrapped,
        "salt": slice(wrapped.stop, wrapped.stop + 32),
        "commitment": slice(wrapped.stop + 32, wrapped.stop + 64),
    }


def splice(data: bytes, where: slice, replacement: bytes) -> bytes:
    assert where.stop - where.start == len(replacement)
    return data[: where.start] + replacement + data[where.stop :]


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "frames"),
    [
        (b"", 1),
        (b"\x00", 1),
        (os.urandom(FRAME // 2), 1),
        (os.urandom(5 * FRAME), 6),
        ("Bệnh án điện tử — Nguyễn Thị Hồng\n".encode() * 20_000, None),
    ],
    ids=["empty", "one-byte", "half-frame", "six-frames", "compressible-text"],
)
def test_round_trip(ring: LocalKeyring, data: bytes, frames: int | None) -> None:
    src, dst = io.BytesIO(data), io.BytesIO()
    info = seal_stream(src, dst, identity=IDENT, keys=ring, settings=SMALL)
    sealed = dst.getvalue()
    assert info.sealed_bytes == len(sealed)
    assert info.plaintext_bytes == len(data)
    assert info.frames == len(frame_spans(sealed))
    if frames is not None:
        assert info.frames == frames
    out = io.BytesIO()
    opened = unseal_stream(io.BytesIO(sealed), out, identity=IDENT, keys=ring, settings=SMALL)
    assert out.getvalue() == data
    assert (opened.plaintext_bytes, opened.frames) == (len(data), info.frames)
    assert unseal(sealed, identity=IDENT, keys=ring, settings=SMALL) == data
    assert seal(data, identity=IDENT, keys=ring, settings=SMALL)[:8] == MAGIC


def test_compressible_text_is_compressed(ring: LocalKeyring) -> None:
    data = "Chẩn đoán: viêm phổi; điều trị: kháng sinh.\n".encode() * 10_000
    sealed = seal(data, identity=IDENT, keys=ring, settings=SMALL)
    assert len(sealed) < len(data) // 20


def test_empty_plaintext_has_exactly_one_final_frame(ring: LocalKeyring) -> None:
    sealed = seal(b"", identity=IDENT, keys=ring, settings=SMALL)
    [(start, _, _)] = frame_spans(sealed)
    assert sealed[start] == 1


def test_exactly_one_frame_of_compressed_data(ring: LocalKeyring) -> None:
    # "One frame" is about compressed bytes: random data compresses to itself plus zstd's framing,
    # so look for the plaintext length whose compressed form is exactly frame_size.
    noise = os.urandom(FRAME)
    for n in range(FRAME - 64, FRAME):
        info = seal_stream(
            io.BytesIO(noise[:n]), io.BytesIO(), identity=IDENT, keys=ring, settings=SMALL
        )
        if info.compressed_bytes == FRAME:
            break
    else:
        pytest.fail("no plaintext length compresses to exactly one frame")
    assert info.frames == 1
    exact = seal(noise[:n], identity=IDENT, keys=ring, settings=SMALL)
    [(start, body, end)] = frame_spans(exact)
    assert (exact[start], end - body) == (1, FRAME + 16)
    assert unseal(exact, identity=IDENT, keys=ring, settings=SMALL) == noise[:n]

    one_more = seal(noise[: n + 1], identity=IDENT, keys=ring, settings=SMALL)
    spans = frame_spans(one_more)
    assert [one_more[s] for s, _, _ in spans] == [0, 1]
    assert spans[1][2] - spans[1][1] == 1 + 16  # the final frame carries the one extra byte
    assert unseal(one_more, identity=IDENT, keys=ring, settings=SMALL) == noise[: n + 1]


def test_every_seal_uses_a_fresh_key(ring: LocalKeyring, plaintext: bytes) -> None:
    a = seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)
    b = seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)
    ha, hb = read_header(a), read_header(b)
    assert ha.wrapped_key != hb.wrapped_key
    assert ha.salt != hb.salt
    assert a[ha.length :] != b[hb.length :]


def test_short_reads_from_the_source_are_handled(
    ring: LocalKeyring, sealed: bytes, plaintext: bytes
) -> None:
    class Trickle:
        def __init__(self, data: bytes) -> None:
            self._src = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._src.read(min(size, 7) if size >= 0 else 7)

    out = io.BytesIO()
    src = cast(BinaryIO, Trickle(sealed))
    unseal_stream(src, out, identity=IDENT, keys=ring, settings=SMALL)
    assert out.getvalue() == plaintext
    resealed = io.BytesIO()
    seal_stream(
        cast(BinaryIO, Trickle(plaintext)), resealed, identity=IDENT, keys=ring, settings=SMALL
    )
    assert unseal(resealed.getvalue(), identity=IDENT, keys=ring, settings=SMALL) == plaintext


def test_unseal_to_path_writes_a_private_file(
    ring: LocalKeyring, sealed: bytes, plaintext: bytes, out_dir: Path
) -> None:
    target = out_dir / "record.pdf"
    info = unseal_to_path(io.BytesIO(sealed), target, identity=IDENT, keys=ring, settings=SMALL)
    assert target.read_bytes() == plaintext
    assert info.plaintext_bytes == len(plaintext)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(out_dir.iterdir()) == [target]


def test_concurrent_seals_do_not_share_codec_state(ring: LocalKeyring) -> None:
    def round_trip(i: int) -> bool:
        data = random.Random(i).randbytes(20_000) + bytes(i * 100)
        sealed = seal(data, identity=IDENT, keys=ring, settings=SMALL)
        return unseal(sealed, identity=IDENT, keys=ring, settings=SMALL) == data

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(round_trip, range(200)))


def test_a_failed_seal_leaves_later_seals_correct(ring: LocalKeyring, plaintext: bytes) -> None:
    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk gone")
            return os.urandom(1000)

    with pytest.raises(OSError, match="disk gone"):
        seal_stream(
            cast(BinaryIO, Failing()), io.BytesIO(), identity=IDENT, keys=ring, settings=SMALL
        )
    sealed = seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)
    assert unseal(sealed, identity=IDENT, keys=ring, settings=SMALL) == plaintext


# --- header ---------------------------------------------------------------------------------------


def test_read_header_from_bytes_prefix_and_stream(ring: LocalKeyring, sealed: bytes) -> None:
    header = read_header(sealed)
    assert (header.format_version, header.algorithm, header.frame_size) == (1, 1, FRAME)
    assert header.kek == KekRef(KEK_ID, 1)
    assert read_header(sealed[: header.length]) == header
    stream = io.BytesIO(sealed)
    assert read_header(stream) == header
    assert stream.tell() == header.length  # positioned at the first frame
    assert "wrapped_key" not in repr(header)


def _edit_fixed(sealed: bytes, fmt: str, offset: int, value: int) -> bytes:
    data = bytearray(sealed)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: b"%PDF-1.7" + s[8:], "magic"),
        (lambda s: _edit_fixed(s, ">H", 8, 2), "version 2"),
        (lambda s: _edit_fixed(s, ">H", 10, 9), "algorithm 9"),
        (lambda s: _edit_fixed(s, ">H", 12, 10), "header length"),
        (lambda s: _edit_fixed(s, ">H", 12, 60_000), "header length"),
        (lambda s: _edit_fixed(s, ">H", 12, read_header(s).length + 1), "add up"),
        (lambda s: _edit_fixed(s, ">H", 12, read_header(s).length - 1), "add up"),
        (lambda s: _edit_fixed(s, ">I", 14, 1000), "frame size"),
        (lambda s: _edit_fixed(s, ">I", 14, 128 * MiB), "frame size"),
        (lambda s: _edit_fixed(s, ">H", 22, 0), "KEK id length"),
        (lambda s: _edit_fixed(s, ">H", 24 + len(KEK_ID), 0), "wrapped key length"),
        (lambda s: _edit_fixed(s, ">H", 24 + len(KEK_ID), 60_000), "wrapped key length"),
        (lambda s: _edit_fixed(s, ">B", 24, 0xC3), "ASCII"),
        (lambda s: s[:20], "truncated"),
        (lambda s: s[:100], "truncated"),
        (lambda s: b"", "magic"),
    ],
)
def test_header_is_parsed_strictly(
    ring: LocalKeyring, sealed: bytes, out_dir: Path, edit: Callable[[bytes], bytes], message: str
) -> None:
    altered = edit(sealed)
    with pytest.raises(EnvelopeFormatError, match=message):
        read_header(altered)
    assert_refused(altered, ring, out_dir, EnvelopeFormatError)


# --- the tamper matrix ----------------------------------------------------------------------------


def test_every_bit_of_the_header_is_protected(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    length = read_header(sealed).length
    fields = header_fields(sealed)
    results = {
        (pos, bit): outcome(flip(sealed, pos, bit), ring, out_dir)
        for pos in range(length)
        for bit in range(8)
    }
    assert [where for where, error in results.items() if error is None] == []
    assert all(results[(pos, b)] is EnvelopeFormatError for pos in range(12) for b in range(8))
    for name in ("salt", "commitment"):
        where = fields[name]
        assert {results[(p, b)] for p in range(where.start, where.stop) for b in range(8)} == {
            KeyCommitmentError
        }
    assert {EnvelopeFormatError, EnvelopeIntegrityError, KeyCommitmentError} <= set(
        results.values()
    )


def test_bit_flips_in_every_frame_are_detected(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    spans = frame_spans(sealed)
    assert len(spans) == 4
    for start, body, end in spans:
        positions = {*range(start, body), body, (body + end) // 2, end - 17, end - 16, end - 1}
        for pos in positions:
            for bit in (0, 7):
                assert_refused(flip(sealed, pos, bit), ring, out_dir)


def test_truncation_at_every_frame_boundary(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    boundaries = [read_header(sealed).length] + [end for _, _, end in frame_spans(sealed)[:-1]]
    assert len(boundaries) == 4
    for cut in boundaries:
        assert_refused(sealed[:cut], ring, out_dir)
        with pytest.raises(EnvelopeIntegrityError, match="without a final frame"):
            unseal(sealed[:cut], identity=IDENT, keys=ring, settings=SMALL)


def test_truncation_inside_frames(ring: LocalKeyring, sealed: bytes, out_dir: Path) -> None:
    for start, body, end in frame_spans(sealed):
        for cut in (start + 1, start + 4, body - 1, body, (body + end) // 2, end - 16, end - 1):
            assert_refused(sealed[:cut], ring, out_dir)


def test_truncation_inside_the_header(ring: LocalKeyring, sealed: bytes, out_dir: Path) -> None:
    for cut in (0, 1, 8, 23, 24, read_header(sealed).length - 1):
        assert_refused(sealed[:cut], ring, out_dir, EnvelopeFormatError)


def test_appended_bytes_are_detected(ring: LocalKeyring, sealed: bytes, out_dir: Path) -> None:
    last_start, _, _ = frame_spans(sealed)[-1]
    for tail in (b"\x00", b"garbage", sealed[last_start:], sealed):
        assert_refused(sealed + tail, ring, out_dir)


def test_reordered_dropped_and_duplicated_frames(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    header_end = read_header(sealed).length
    f = [sealed[s:e] for s, _, e in frame_spans(sealed)]
    head = sealed[:header_end]
    for frames in (
        [f[1], f[0], f[2], f[3]],  # swapped
        [f[0], f[2], f[1], f[3]],
        [f[0], f[1], f[3], f[2]],  # final frame moved earlier
        [f[0], f[2], f[3]],  # dropped
        [f[0], f[0], f[2], f[3]],  # duplicated in place of another
        [f[0], f[1], f[2], f[2], f[3]],  # duplicated and inserted
        [f[3]],  # only the final frame
    ):
        assert_refused(head + b"".join(frames), ring, out_dir)


def test_bodies_swapped_between_objects(ring: LocalKeyring, sealed: bytes, out_dir: Path) -> None:
    other = seal(os.urandom(len(sealed)), identity=IDENT, keys=ring, settings=SMALL)
    ha, hb = read_header(sealed).length, read_header(other).length
    assert_refused(sealed[:ha] + other[hb:], ring, out_dir)
    assert_refused(other[:hb] + sealed[ha:], ring, out_dir)


@pytest.mark.parametrize("field", ["wrapped_key", "salt", "commitment"])
def test_header_fields_swapped_between_objects(
    ring: LocalKeyring, sealed: bytes, out_dir: Path, field: str
) -> None:
    other = seal(b"another record", identity=IDENT, keys=ring, settings=SMALL)
    where = header_fields(sealed)[field]
    assert where == header_fields(other)[field]
    assert_refused(splice(sealed, where, other[where]), ring, out_dir, KeyCommitmentError)


def test_whole_key_material_swapped_between_objects(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    # wrapped key + salt + commitment are consistent with each other, so the commitment holds;
    # the frames are then under the other object's key and header hash.
    other = seal(b"another record", identity=IDENT, keys=ring, settings=SMALL)
    fields = header_fields(sealed)
    where = slice(fields["wrapped_key"].start, fields["commitment"].stop)
    assert_refused(splice(sealed, where, other[where]), ring, out_dir)


def test_kek_version_swapped_between_objects(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    ring.rotate()
    newer = seal(b"sealed under v2", identity=IDENT, keys=ring, settings=SMALL)
    where = header_fields(sealed)["kek_version"]
    assert read_header(newer).kek.version == 2
    assert_refused(splice(sealed, where, newer[where]), ring, out_dir)


def test_key_commitment_rejects_a_different_data_key(
    ring: LocalKeyring, sealed: bytes, out_dir: Path
) -> None:
    # A header whose wrapped key is valid under the KEK but decrypts to another data key.
    rewrapped = ring.wrap(os.urandom(32)).wrapped
    altered = splice(sealed, header_fields(sealed)["wrapped_key"], rewrapped)
    with pytest.raises(KeyCommitmentError):
        unseal(altered, identity=IDENT, keys=ring, settings=SMALL)
    assert_refused(altered, ring, out_dir, KeyCommitmentError)


def test_wrong_kek_is_refused(
    ring: LocalKeyring, sealed: bytes, out_dir: Path, tmp_path: Path
) -> None:
    other = LocalKeyring.create(tmp_path / "other-keys", kek_id=KEK_ID)  # same id and version
    assert_refused(sealed, other, out_dir)


def test_unknown_kek_version_is_refused(ring: LocalKeyring, out_dir: Path, tmp_path: Path) -> None:
    backup = tmp_path / "old-backup"
    shutil.copytree(ring.directory, backup)  # a keyring restored from before the rotation
    ring.rotate()
    sealed = seal(b"sealed under v2", identity=IDENT, keys=ring, settings=SMALL)
    stale = LocalKeyring.open(backup)
    assert_refused(sealed, stale, out_dir)
    with pytest.raises(EnvelopeIntegrityError, match="v2") as info:
        unseal(sealed, identity=IDENT, keys=stale, settings=SMALL)
    assert isinstance(info.value.__cause__, UnknownKeyError)


def test_unknown_kek_id_is_refused(sealed: bytes, out_dir: Path, tmp_path: Path) -> None:
    other = LocalKeyring.create(tmp_path / "other-keys", kek_id="another-kek")
    assert_refused(sealed, other, out_dir)


@pytest.mark.parametrize(
    "moved",
    [
        ObjectIdentity(bucket="emr-archive-copy", key=IDENT.key, record_id=IDENT.record_id),
        ObjectIdentity(
            bucket=IDENT.bucket, key="records/2025/11/enc-2.pdf.sealed", record_id="enc-1"
        ),
        ObjectIdentity(bucket=IDENT.bucket, key=IDENT.key, record_id="enc-2"),
    ],
    ids=["bucket", "key", "record"],
)
def test_moved_object_is_refused(
    ring: LocalKeyring, sealed: bytes, out_dir: Path, moved: ObjectIdentity
) -> None:
    assert_refused(sealed, ring, out_dir, identity=moved)


def test_identity_is_encoded_unambiguously(ring: LocalKeyring, out_dir: Path) -> None:
    a = ObjectIdentity(bucket="ab", key="c", record_id="d")
    b = ObjectIdentity(bucket="a", key="bc", record_id="d")
    sealed = seal(b"x", identity=a, keys=ring, settings=SMALL)
    assert unseal(sealed, identity=a, keys=ring, settings=SMALL) == b"x"
    assert_refused(sealed, ring, out_dir, identity=b)


@pytest.mark.parametrize(
    "fault",
    [
        lambda pending, total: (pending[:-3], total),  # compressed stream cut short
        lambda pending, total: (pending + b"junk", total),  # junk after the zstd frame
        lambda pending, total: (pending, total + 1),  # wrong plaintext length
        lambda pending, total: (pending, total - 1),
    ],
    ids=["cut-zstd", "junk-after-zstd", "length-plus-one", "length-minus-one"],
)
def test_authentic_but_malformed_content_is_refused(
    ring: LocalKeyring,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[bytearray, int], tuple[bytearray, int]],
) -> None:
    # A faulty (or hostile, key-holding) sealer: frames authenticate, the content inside is wrong.
    # The reader must not trust zstd's own end-of-stream detection.
    original = FrameWriter.finish

    def faulty_finish(self: FrameWriter, plaintext_bytes: int) -> None:
        self._pending, plaintext_bytes = fault(self._pending, plaintext_bytes)
        original(self, plaintext_bytes)

    monkeypatch.setattr(FrameWriter, "finish", faulty_finish)
    data = "Phiếu khám bệnh\n".encode() * 500 + os.urandom(3000)
    sealed = seal(data, identity=IDENT, keys=ring, settings=SMALL)
    monkeypatch.undo()
    assert_refused(sealed, ring, out_dir)


def test_rotation_keeps_old_objects_openable(ring: LocalKeyring, plaintext: bytes) -> None:
    old = seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)
    ring.rotate()
    new = seal(plaintext, identity=IDENT, keys=ring, settings=SMALL)
    assert (read_header(old).kek.version, read_header(new).kek.version) == (1, 2)
    reopened = LocalKeyring.open(ring.directory)
    for sealed in (old, new):
        assert unseal(sealed, identity=IDENT, keys=reopened, settings=SMALL) == plaintext


# --- size limits and memory -----------------------------------------------------------------------


class Generated:
    """A source of ``size`` bytes made on the fly (half random, half zeros), hashed as read."""

    def __init__(self, size: int, *, zeros_only: bool = False) -> None:
        self.remaining, self.zeros_only = size, zeros_only
        self.sha256 = hashlib.sha256()
        self._rng = random.Random(size)
        self._zeros = bytes(256 * 1024)
        self._toggle = False

    def read(self, size: int = -1) -> bytes:
        n = min(self.remaining, size if size >= 0 else 256 * 1024, 256 * 1024)
        self._toggle = not self._toggle
        chunk = self._zeros[:n] if self.zeros_only or self._toggle else self._rng.randbytes(n)
        self.remaining -= n
        if not self.zeros_only:
            self.sha256.update(chunk)
        return chunk


class HashingSink:
    def __init__(self) -> None:
        self.sha256, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def _peak_during(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - baseline


def test_50_mib_streams_in_bounded_memory(ring: LocalKeyring, tmp_path: Path) -> None:
    settings = SealSettings(frame_size=MiB)
    size = 50 * MiB
    source, path = Generated(size), tmp_path / "big.sealed"
    with path.open("wb") as dst:
        peak_seal = _peak_during(
            lambda: seal_stream(
                cast(BinaryIO, source), dst, identity=IDENT, keys=ring, settings=settings
            )
        )
    sink = HashingSink()
    with path.open("rb") as src:
        peak_unseal = _peak_during(
            lambda: unseal_stream(
                src, cast(BinaryIO, sink), identity=IDENT, keys=ring, settings=settings
            )
        )
    assert sink.size == size
    assert sink.sha256.digest() == source.sha256.digest()
    assert read_header(path.read_bytes()[:4096]).frame_size == MiB
    assert path.stat().st_size > 20 * MiB  # many frames, not one tiny one
    assert peak_seal < 16 * MiB, peak_seal
    assert peak_unseal < 16 * MiB, peak_unseal


def test_zstd_bomb_is_refused_early_in_little_memory(ring: LocalKeyring, out_dir: Path) -> None:
    sealed_io = io.BytesIO()
    seal_stream(
        cast(BinaryIO, Generated(200 * MiB, zeros_only=True)),
        sealed_io,
        identity=IDENT,
        keys=ring,
        settings=SealSettings(),
    )
    bomb = sealed_io.getvalue()
    assert len(bomb) < 200 * 1024  # a few KB that would expand to 200 MiB
    strict = SealSettings(max_plaintext_bytes=MiB)
    sink = HashingSink()

    def refuse() -> None:
        with pytest.raises(DecompressionLimitError):
            unseal_stream(
                io.BytesIO(bomb), cast(BinaryIO, sink), identity=IDENT, keys=ring, settings=strict
            )

    assert _peak_during(refuse) < 4 * MiB
    assert sink.size <= MiB  # stopped at the limit, not after materialising the output
    assert outcome(bomb, ring, out_dir, settings=strict) is DecompressionLimitError


def test_plaintext_limit_is_exact(ring: LocalKeyring, out_dir: Path) -> None:
    limit = 10_000
    data = os.urandom(limit + 1)
    big = seal(data, identity=IDENT, keys=ring, settings=SMALL)
    at_limit = SealSettings(frame_size=FRAME, max_plaintext_bytes=limit)
    fits = seal(data[:limit], identity=IDENT, keys=ring, settings=at_limit)
    assert unseal(fits, identity=IDENT, keys=ring, settings=at_limit) == data[:limit]
    assert outcome(big, ring, out_dir, settings=at_limit) is DecompressionLimitError
    with pytest.raises(DecompressionLimitError):
        seal(data, identity=IDENT, keys=ring, settings=at_limit)
