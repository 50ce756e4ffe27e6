"""Fixity on the real SeaweedFS: one GET per record answers the bytes, the store's checksum, the
lock and the hold (no HEAD), and bytes changed below the S3 API are still found when the store
serves them: a needle rewritten with a valid CRC passes SeaweedFS's own check, keeps the object's
stored SHA-256 checksum, and only hashing the bytes read catches it."""

from __future__ import annotations

import mmap
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from archive.catalog import Catalog, CatalogRow, table_to_rows
from archive.store import S3ObjectStore
from infra.settings import AppSettings as Settings
from tests.support.nightly import make_export, run_once
from verification.config import HoldSet, VerificationSettings
from verification.results import Status
from verification.worker import FIXITY_CHECKS, build_verifier, environment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archived(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A bucket and catalog of this module's own with a few records (as the `settings` fixture,
    archived once for both tests)."""
    tmp = tmp_path_factory.mktemp("fixity-reads")
    settings = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": f"fixity-{secrets.token_hex(4)}"}),
            "catalog": stack_settings.catalog.model_copy(update={"catalog_dir": tmp / "catalog"}),
            "archive": stack_settings.archive.model_copy(update={"workers": 1}),
        }
    )
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    export = make_export(tmp / "export", encounters=6, seed=31, bad_share=0.0)
    summary = run_once(settings, export)
    assert summary.archived >= 4
    return settings


def _rows(settings: Settings) -> list[CatalogRow]:
    return table_to_rows(Catalog.open(settings.catalog_dir).rows())


def _fixity(settings: Settings, rows: list[CatalogRow]) -> tuple[list[Any], Counter[str]]:
    """Fixity on ``rows`` in this process, counting the S3 operations the verifier sends."""
    vsettings = VerificationSettings(workers=1, threads=2)
    env = environment(settings, vsettings, HoldSet())
    sent: Counter[str] = Counter()
    inner = cast(S3ObjectStore, getattr(env.store, "inner", env.store))
    inner.client.meta.events.register(
        "before-call.s3", lambda model, **_: sent.update([model.name])
    )
    verifier, threads = build_verifier(env, vsettings, FIXITY_CHECKS)
    with threads:
        now = datetime.now(UTC)
        return [verifier.verify(r, now=now) for r in rows], sent


def test_a_fixity_run_reads_each_record_with_one_get_and_no_head(archived: Settings) -> None:
    rows = _rows(archived)[:-1]  # the last one is the next test's
    results, sent = _fixity(archived, rows)
    assert [r.status for r in results] == [Status.PASSED] * len(rows)
    assert {c.check for r in results for c in r.checks} == {
        "object",
        "unseal",
        "embedded-data",
        "lock",
    }
    assert sent == {"GetObject": len(rows)}


def test_bytes_served_changed_under_unchanged_metadata_are_found(archived: Settings) -> None:
    victim = _rows(archived)[-1]
    store = S3ObjectStore.from_settings(archived)
    sealed = store.get(victim.object_key, version_id=victim.version_id)
    rewrite_on_disk(archived, sealed)
    served = store.get(victim.object_key, version_id=victim.version_id)
    assert served != sealed  # SeaweedFS serves the rewritten needle: its CRC holds
    head = store.head(victim.object_key, version_id=victim.version_id)
    assert head.sha256 == victim.sealed_sha256  # the store's checksum did not notice

    [result], sent = _fixity(archived, [victim])
    assert result.status is Status.FAILED
    assert result.reason.reason_code == "object.sealed_sha256_mismatch"
    assert sent == {"GetObject": 1}


# --- a SeaweedFS needle rewritten with a valid CRC ----------------------------------------------


def rewrite_on_disk(settings: Settings, sealed: bytes) -> Path:
    """Change one byte of ``sealed`` in its SeaweedFS needle and write the needle's CRC-32C for
    the new bytes (in the form the old one had), so that the volume server serves them.

    Needle layout (SeaweedFS 4.x): cookie 4, id 8, size 4, then the body of ``size`` bytes
    (data size 4, data, flags and optional fields), then the checksum 4 (big-endian)."""
    for dat in sorted((settings.seaweedfs_dir / "data").rglob("*.dat")):
        with open(dat, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            start = m.find(sealed[:64])
            if start < 0:
                continue
            assert int.from_bytes(m[start - 4 : start], "big") == len(sealed)  # data size
            body = int.from_bytes(m[start - 8 : start - 4], "big")
            at = start - 4 + body  # the needle's checksum
            stored = int.from_bytes(m[at : at + 4], "big")
            form = next(f for f in (_masked, _plain) if f(_crc32c(sealed)) == stored)
            changed = bytearray(sealed)
            changed[len(changed) // 2] ^= 0x01
            m[start : start + len(sealed)] = bytes(changed)
            m[at : at + 4] = form(_crc32c(bytes(changed))).to_bytes(4, "big")
            m.flush()
            return dat
    raise AssertionError("the sealed object's bytes were not found in any SeaweedFS volume")


def _table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()


def _crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _plain(crc: int) -> int:
    return crc


def _masked(crc: int) -> int:
    """SeaweedFS's CRC.Value(): rotated and offset, as it writes new needles."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
