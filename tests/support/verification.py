"""Damage for verification tests, done where an attacker or bit rot would: below the S3 API."""

from __future__ import annotations

import mmap
from pathlib import Path

from infra.settings import AppSettings as Settings


def flip_on_disk(settings: Settings, sealed: bytes) -> Path:
    """Change one byte of ``sealed`` where SeaweedFS keeps it: in a volume's .dat file, found by
    a run of the object's own (random-looking, so unique) bytes."""
    middle = len(sealed) // 2
    needle = sealed[middle : middle + 64]
    for dat in sorted((settings.seaweedfs_dir / "data").rglob("*.dat")):
        with open(dat, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            pos = m.find(needle)
            if pos >= 0:
                m[pos + 32] ^= 0x01
                m.flush()
                return dat
    raise AssertionError("the sealed object's bytes were not found in any SeaweedFS volume")
