"""A large synthetic catalog, written fast but through the real chain, for the catalog benches.

Columns are built with pyarrow a manifest at a time (fixed-width strings straight from buffers,
no Python object per cell), then encoded with :func:`archive.catalog.encode_manifest` and linked
with :func:`archive.catalog.chain.link_manifest`, so that :meth:`Catalog.open` verifies the result
like any catalog. Nothing is uploaded: the benches measure reads. One manifest is one nightly run
(``PER_MANIFEST`` rows discharged the day before), the shape the archive writes; encounter ids are
a random permutation, so they are spread over every manifest (no file's min/max prunes them), and
patients (pseudonyms: HMACs from a real keyring) have about three stays each, on random days.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from archive.catalog import SCHEMA, ManifestHeader, encode_manifest
from archive.catalog.chain import link_manifest
from archive.catalog.local import MANIFESTS_DIR, mkdir, write_file, write_head
from archive.catalog.naming import CATALOG_FORMAT_VERSION, GENESIS_SHA256, manifest_name
from archive.seal import LocalKeyring

PER_MANIFEST: Final = 20_000
FIRST_DAY: Final = datetime(2024, 1, 1, 2, tzinfo=UTC)  # first nightly run, 02:00 UTC
FACILITIES: Final = ("79001", "79002", "79010", "01001", "48003")
CLASSES: Final = ("standard-10y", "surgery-15y", "mental-15y", "death-20y", "occupational-30y")
SIGNERS: Final = ("a" * 64, "b" * 64)  # the hospital's key, renewed once
_US: Final = 1_000_000


def encounter_id(n: int) -> str:
    return f"ENC{n:010d}"


def patient_id(n: int) -> str:
    return f"BN{n:09d}"


def generate(directory: Path, *, rows: int, keyring: LocalKeyring, seed: int = 1) -> int:
    """Write a verified chain of ``rows`` rows under ``directory``; returns the manifest count."""
    rng = random.Random(seed)
    patients = max(1, rows // 3)
    names = b"".join(keyring.pseudonym(patient_id(i)).encode() for i in range(patients))
    pseudonyms = _fixed(names, width=67)  # "p1_" + 64 hex digits
    ids = list(range(rows))
    rng.shuffle(ids)
    mkdir(directory / MANIFESTS_DIR)
    prev, seq = None, 0
    for first in range(0, rows, PER_MANIFEST):
        seq += 1
        count = min(PER_MANIFEST, rows - first)
        table = _manifest_table(seq, ids[first : first + count], pseudonyms, patients, rng)
        run_id = table.column("run_id")[0].as_py()
        header = ManifestHeader(
            format_version=CATALOG_FORMAT_VERSION,
            seq=seq,
            run_id=run_id,
            created_at=_day(seq),
            row_count=count,
            prev_sha256=prev.sha256 if prev else GENESIS_SHA256,
        )
        data = encode_manifest(table, header)
        prev = link_manifest(prev, seq, data, label=manifest_name(seq))
        write_file(directory / MANIFESTS_DIR / prev.name, data)
    if prev is not None:
        write_head(directory, prev)
    return seq


def _day(seq: int) -> datetime:
    return FIRST_DAY + timedelta(days=seq - 1)


def _manifest_table(
    seq: int, ids: list[int], pseudonyms: Any, patients: int, rng: random.Random
) -> Any:
    n, run_at = len(ids), _day(seq)
    run_id = f"{run_at:%Y%m%dT%H%M%SZ}-nightly"
    epoch = int(run_at.timestamp()) * _US
    discharged = [epoch - rng.randrange(2 * 3600, 26 * 3600) * _US for _ in range(n)]
    admitted = [d - rng.randrange(1, 15 * 86400) * _US for d in discharged]
    signed = [epoch + rng.randrange(3600) * _US for _ in range(n)]
    classes = [i % len(CLASSES) for i in ids]
    years = [10, 15, 15, 20, 30]
    keep = [d + years[c] * 365 * 86400 * _US for d, c in zip(discharged, classes, strict=True)]
    columns: dict[str, Any] = {
        "encounter_id": _fixed(b"".join(encounter_id(i).encode() for i in ids), width=13),
        "patient_pseudonym": pseudonyms.take(pa.array([rng.randrange(patients) for _ in ids])),
        "facility": pa.array([FACILITIES[i % len(FACILITIES)] for i in ids]),
        "admitted_at": _times(admitted),
        "discharged_at": _times(discharged),
        "retention_class": pa.array([CLASSES[c] for c in classes]),
        "retain_until": _times(keep),
        "bucket": pa.array(["emr-archive"] * n),
        "object_key": _hex(n, 19, prefix=b"records/v1/r1"),  # under RECORDS_PREFIX, as listed
        "version_id": _hex(n, 16),
        "pdf_sha256": _hex(n, 32),
        "data_sha256": _hex(n, 32),
        "sealed_sha256": _hex(n, 32),
        "sealed_size": pa.array([rng.randrange(50_000, 400_000) for _ in ids], pa.int64()),
        "signer_cert_sha256": pa.array([SIGNERS[seq * 2 > 1000] for _ in ids]),
        "signed_at": _times(signed),
        "kek_id": pa.array(["emr-archive-kek"] * n),
        "kek_version": pa.array([1] * n, pa.int32()),
        "format_version": pa.array([1] * n, pa.int32()),
        "run_id": pa.array([run_id] * n),
        "source_kind": pa.array(["fhir"] * n),
        "episode_key": pa.nulls(n, pa.string()),
        "facility_signature": pa.nulls(n, pa.string()),
        "facility_signer_sha256": pa.nulls(n, pa.string()),
    }
    return pa.Table.from_arrays([columns[f.name] for f in SCHEMA], schema=SCHEMA)


def _times(micros: list[int]) -> Any:
    return pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _hex(n: int, size: int, *, prefix: bytes = b"") -> Any:
    """``n`` random lowercase hex strings of ``2 * size`` digits, each after ``prefix``."""
    raw = os.urandom(n * size).hex().encode()
    width = 2 * size
    data = b"".join(prefix + raw[i * width : (i + 1) * width] for i in range(n))
    return _fixed(data, width=len(prefix) + width)


def _fixed(data: bytes, *, width: int) -> Any:
    """A string array cut from ``data`` in equal widths (every value here has one width)."""
    n = len(data) // width
    offsets = pa.array(range(0, n * width + 1, width), pa.int32())
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(data))
