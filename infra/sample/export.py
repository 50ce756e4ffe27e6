"""Writing the sample as a FHIR server's ``$export`` would: NDJSON files and ``manifest.json``.

Takes resources (or, for planted bad lines, raw bytes) one at a time; writes one
``<Type>.ndjson`` per resource type, opened on first use, and at the end the Bulk Data status
response listing them with their line counts. Key order and spacing follow what a server writes
(natural order, compact, UTF-8), not the archive's canonical form: the collector must cope with
real exports, and the sample's bytes are pinned per seed.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from archive.sources import fhir

MANIFEST_NAME: Final = "manifest.json"
BASE_URL: Final = "https://his.bvdk-hoabinh.example/fhir"
FILE_ORDER: Final = fhir.BUNDLE_ORDER  # one NDJSON file per type, listed in this order


class NdjsonWriter:
    """One NDJSON file per type, opened on first use; counts lines for the manifest."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.handles: dict[str, IO[bytes]] = {}
        self.counts: Counter[str] = Counter()
        self.size = 0

    def __enter__(self) -> NdjsonWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self.handles.values():
            handle.close()

    def resource(self, resource: dict[str, Any]) -> None:
        self.line(resource["resourceType"], dumps(resource))

    def line(self, resource_type: str, raw: bytes) -> None:
        handle = self.handles.get(resource_type)
        if handle is None:
            path = self.out_dir / f"{resource_type}.ndjson"
            handle = self.handles[resource_type] = path.open("wb")
        handle.write(raw + b"\n")
        self.counts[resource_type] += 1
        self.size += len(raw) + 1

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f"{t}.ndjson" for t in FILE_ORDER if self.counts[t])


def dumps(resource: dict[str, Any]) -> bytes:
    # As a server writes it: natural key order, compact, UTF-8.
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write_manifest(
    out_dir: Path, writer: NdjsonWriter, taken_at: datetime, day: date, seed: int
) -> None:
    # Its own random stream: the job id must not shift the draws of the records.
    job_rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - reproducible fake data
    job = uuid.UUID(int=job_rng.getrandbits(128), version=4)
    types = [t for t in FILE_ORDER if writer.counts[t]]
    since = datetime.combine(day - timedelta(days=1), time(0), tzinfo=taken_at.tzinfo)
    manifest = {
        "transactionTime": taken_at.isoformat(timespec="seconds"),
        "request": f"{BASE_URL}/$export?_type={','.join(types)}"
        f"&_since={since.isoformat(timespec='seconds').replace('+', '%2B')}",
        "requiresAccessToken": True,
        "output": [
            {"type": t, "url": f"{BASE_URL}/bulkfiles/{job}/{t}.ndjson", "count": writer.counts[t]}
            for t in types
        ],
        "error": [],
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    (out_dir / MANIFEST_NAME).write_bytes(text.encode("utf-8"))
