"""The one atomic write: exact mode, exclusive create, durable (file and directory fsynced), and
nothing left behind when it fails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from archive.core.atomic import atomic_writer, write_atomic, write_private


def test_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o644)
    old_umask = os.umask(0)
    try:
        write_private(target, "new")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "index.jsonl"
    target.write_bytes(b"old")

    def broken_replace(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_private(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.jsonl"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_mode_is_exactly_the_one_asked_for_whatever_the_umask(
    tmp_path: Path, mode: int, umask: int
) -> None:
    target = tmp_path / "manifest.parquet"
    old_umask = os.umask(umask)
    try:
        write_atomic(target, b"data", mode=mode)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_the_default_mode_is_private(tmp_path: Path) -> None:
    write_atomic(tmp_path / "secret", "text is written as UTF-8: Nguyễn")
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert (tmp_path / "secret").read_bytes() == "text is written as UTF-8: Nguyễn".encode()


def test_exclusive_create_refuses_an_existing_file_and_leaves_it(tmp_path: Path) -> None:
    target = tmp_path / "keks.json"
    write_atomic(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_atomic(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["keks.json"]
    assert target.stat().st_nlink == 1  # the temporary name is gone, not left as a second link


def _stream_then_fail(target: Path) -> None:
    with atomic_writer(target) as f:
        f.write(b"plaintext of a frame that later fails")
        assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]
        raise ValueError("not authentic")


def test_an_exception_inside_the_writer_removes_the_temp_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not authentic"):
        _stream_then_fail(tmp_path / "record.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_fsync_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(_: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_atomic(tmp_path / "HEAD", b"new")
    assert list(tmp_path.iterdir()) == []


def test_the_file_and_then_its_directory_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_atomic(tmp_path / "HEAD", b"new")
    assert synced == ["file", "dir"]
    synced.clear()
    write_atomic(tmp_path / "keks.json", b"new", exclusive=True)
    assert synced == ["file", "dir"]
