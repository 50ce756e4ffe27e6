"""Storing the quarantine: what the collector held back, sealed and kept with its reason.

Quarantine entries part ways with records here: they are not rendered or signed, and not
catalogued. Each is stored once as a sealed JSON document under a content-addressed key (a rerun
over the same export adds nothing), locked for the quarantine retention, and listed in the run's
local, private index with where it landed. A store error is counted, not raised: the run's
archived records must still reach the catalog.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from archive.core.errors import ArchiveError
from archive.core.settings import SealSettings
from archive.seal import ArchiveKeys, ObjectIdentity
from archive.sources import QuarantineEntry
from archive.store import ObjectStore, deposit, quarantine_key


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredQuarantine:
    """What storing a run's entries did, for the summary and the local index."""

    index_lines: tuple[str, ...]  # one JSON object per entry: its metadata and where it landed
    reasons: dict[str, int]  # entries by reason, in the order first found
    new: int  # entries no earlier run had stored
    errors: int  # entries that could not be stored (left for the next run)


def store_entries(
    entries: Sequence[QuarantineEntry],
    *,
    store: ObjectStore,
    keys: ArchiveKeys,
    seal: SealSettings,
    retain_until: datetime,
) -> StoredQuarantine:
    """Seal and store every entry (content-addressed: reruns add nothing)."""
    reasons: Counter[str] = Counter()
    lines: list[str] = []
    new = errors = 0
    for entry in entries:
        reasons[entry.reason.value] += 1
        token = keys.record_token(_record_id(entry))
        identity = ObjectIdentity(store.bucket, quarantine_key(token=token), token)
        stored: dict[str, str | None] = {"object_key": identity.key, "version_id": None}
        try:
            receipt = deposit(
                quarantine_document(entry),
                identity=identity,
                retain_until=retain_until,
                store=store,
                keys=keys,
                settings=seal,
            )
            stored["version_id"] = receipt.version_id
            new += receipt.created
        except ArchiveError as e:
            errors += 1
            stored["error"] = type(e).__name__
        metadata = entry.metadata(keys.quarantine_digest)  # keyed: short ids cannot be tried
        lines.append(json.dumps({**metadata, **stored}, sort_keys=True))
    return StoredQuarantine(index_lines=tuple(lines), reasons=dict(reasons), new=new, errors=errors)


def quarantine_document(entry: QuarantineEntry) -> bytes:
    """Exactly what the object's key derives from, so a re-export that shifts *other* lines
    (which ``detail`` and the digests may mention) still finds the same document stored; the
    rest of the entry is in the local quarantine index."""
    body = {
        "reason": entry.reason.value,
        "source_file": entry.source_file,
        "line_number": entry.line_number,
        "raw_sha256": entry.raw_sha256,
        "raw_line_base64": base64.b64encode(entry.raw_line).decode(),
    }
    return json.dumps(body, sort_keys=True).encode()


def _record_id(entry: QuarantineEntry) -> str:
    fields = (
        "quarantine",
        entry.reason.value,
        entry.source_file,
        str(entry.line_number),
        entry.raw_sha256,
    )
    return "\0".join(fields)
