"""`make demo`: the archive's main path on the embedded stack, explained as it runs.

Each step prints what a records officer would want to see. The demo uses short (1-day) locks so
the development bucket does not fill with decade-long records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from archive.errors import LockRefusedError
from archive.settings import Settings
from infra import files, stack, wiring

_DOCUMENT = """TÓM TẮT HỒ SƠ BỆNH ÁN (demo)
Bệnh viện Đa khoa Demo — Khoa Nội tổng hợp
Họ tên: Nguyễn Thị Hồng Nhung    Số CCCD: 001190012345
Chẩn đoán ra viện: J18.9 Viêm phổi, không đặc hiệu
"""


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def run_foundation(settings: Settings) -> None:
    """Store one sealed file under a lock, prove it is unreadable and undeletable, read it back."""
    _step("1. Embedded stack (SeaweedFS with Object Lock, development PKI, keyring)")
    for row in stack.up(settings):
        click.echo(f"   {'ok' if row.healthy else 'FAIL'}  {row.name:<12} {row.detail}")

    _step("2. Seal a discharge summary and store it under a COMPLIANCE lock")
    data = _DOCUMENT.encode("utf-8")
    receipt = files.put_file(settings, data, record_id="DEMO-ENC-0001",
                             retain_until=datetime.now(UTC) + timedelta(days=1))  # fmt: skip
    dep = receipt.deposit
    click.echo(f"   object key  {dep.key}   (a keyed token: no name, id or date)")
    click.echo(f"   version     {dep.version_id}")
    click.echo(f"   lock        COMPLIANCE until {receipt.lock_until:%Y-%m-%d %H:%M} UTC")
    click.echo(
        f"   sealed      {dep.sealed_size} bytes under KEK {dep.kek.kek_id} v{dep.kek.version}"
    )

    store = wiring.open_store(settings)
    sealed = store.get(dep.key, version_id=dep.version_id)
    readable = "Nguyễn".encode() in sealed or b"001190012345" in sealed
    click.echo(f"   the bucket holds ciphertext only: name or CCCD readable in it? {readable}")

    _step("3. Try to delete the locked version (the store must refuse)")
    try:
        store.delete_version(dep.key, version_id=dep.version_id)
        click.secho("   DELETED - the bucket is not WORM!", fg="red")
    except LockRefusedError as e:
        click.echo(f"   refused: {e}")

    _step("4. Read it back and check it")
    out_dir = settings.data_dir / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "demo-file.txt"
    files.get_file(settings, record_id="DEMO-ENC-0001", version_id=dep.version_id, out=out)
    same = out.read_bytes() == data
    click.echo(f"   decrypted copy {out}: identical to the original? {same}")


def closing_hint() -> None:
    click.echo("\nThe stack keeps running for you to explore (`emr-archive stack status`);")
    click.echo("stop it with `.venv/bin/emr-archive stack down`.")
