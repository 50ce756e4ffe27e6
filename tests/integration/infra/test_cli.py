"""The command line as an operator uses it: clear answers, exit codes, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env["EMR_ARCHIVE_DATA_DIR"] = str(settings.data_dir)
    for name, value in settings.stack.model_dump().items():
        env[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    env.update(extra)
    return env


MODULE = (sys.executable, "-m", "infra.cli")
SCRIPT = (str(Path(sys.executable).with_name("emr-archive")),)


def _run(
    settings: Settings,
    *args: str,
    entry: tuple[str, ...] = MODULE,
    stdin: str | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*entry, *args],
        env=_env(settings, **extra),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_reports_every_component(stack_settings: Settings) -> None:
    result = _run(stack_settings, "stack", "status")
    assert result.returncode == 0, result.stderr
    for name in ("keyring", "pki-service", "seaweedfs"):
        assert name in result.stdout
    assert "FAIL" not in result.stdout


def test_up_twice_is_harmless(stack_settings: Settings) -> None:
    before = (stack_settings.stack_dir / "seaweedfs.pid").read_text()
    result = _run(stack_settings, "stack", "up")
    assert result.returncode == 0, result.stderr
    assert (stack_settings.stack_dir / "seaweedfs.pid").read_text() == before


def test_put_then_get_round_trips_a_file(stack_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "giay-ra-vien.txt"
    source.write_text("Giấy ra viện — Trần Văn Bình\n" * 50, encoding="utf-8")
    put = _run(stack_settings, "put", str(source), "--record-id", "CLI-TEST-1")
    assert put.returncode == 0, put.stderr
    assert "read back: identical" in put.stdout
    assert "COMPLIANCE until" in put.stdout
    out = tmp_path / "back.txt"
    got = _run(stack_settings, "get", "--record-id", "CLI-TEST-1", "--out", str(out))
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == source.read_bytes()
    assert (out.stat().st_mode & 0o777) == 0o600


def test_bad_setting_is_one_clear_line_not_a_traceback(stack_settings: Settings) -> None:
    result = _run(stack_settings, "stack", "status", EMR_ARCHIVE_SEAL__ZSTD_LEVEL="fast")
    assert result.returncode == 2
    assert "EMR_ARCHIVE_SEAL__ZSTD_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_store_is_a_clear_error(stack_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    result = _run(
        stack_settings,
        "put",
        str(source),
        "--record-id",
        "X",
        EMR_ARCHIVE_S3__ENDPOINT_URL="http://127.0.0.1:9",
        EMR_ARCHIVE_S3__MAX_ATTEMPTS="2",
        EMR_ARCHIVE_S3__ACCESS_KEY_ID="a",
        EMR_ARCHIVE_S3__SECRET_ACCESS_KEY="b",
    )
    assert result.returncode == 2
    assert "cannot reach the object store" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_keyring_says_how_to_create_one(stack_settings: Settings, tmp_path: Path) -> None:
    result = _run(
        stack_settings, "keys", "status", EMR_ARCHIVE_KEYS__KEYRING_DIR=str(tmp_path / "none")
    )
    assert result.returncode == 2
    assert "keys init" in result.stderr


def test_keys_rotate_keeps_old_files_readable(stack_settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "old.txt"
    source.write_text("sealed before the rotation")
    assert _run(stack_settings, "put", str(source), "--record-id", "ROT-1").returncode == 0
    rotated = _run(stack_settings, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "new current KEK" in rotated.stdout
    out = tmp_path / "back.txt"
    assert _run(stack_settings, "get", "--record-id", "ROT-1", "--out", str(out)).returncode == 0
    assert out.read_text() == "sealed before the rotation"


def test_a_wrong_password_is_not_signed_in_exit_3(stack_settings: Settings) -> None:
    result = _run(
        stack_settings,
        *("search", "--encounter", "E-1", "--as", "nobody.here"),
        entry=SCRIPT,
        stdin="not the password\n",
    )
    assert result.returncode == 3, result.stderr
    assert "not signed in: unknown user or wrong password" in result.stderr
    assert "Traceback" not in result.stderr


def test_archive_from_a_source_outside_the_roots_exits_2_without_the_path(
    stack_settings: Settings, tmp_path: Path
) -> None:
    evil = tmp_path / "evil-Tran-Van-Binh"
    evil.mkdir()
    # The subprocess sees the default roots only (SOURCE_DIR unset, <data_dir>/exports).
    result = _run(
        stack_settings,
        "archive",
        "--since",
        "2026-11-22",
        "--source",
        str(evil),
        EMR_ARCHIVE_CATALOG__CATALOG_DIR=str(tmp_path / "catalog"),
    )
    assert result.returncode == 2, result.stderr
    assert "outside the configured source roots" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Tran-Van-Binh" not in result.stderr + result.stdout
    assert not (tmp_path / "catalog").exists()
