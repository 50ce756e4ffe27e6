"""The quarantine index of an archive run: what it says about ids, and what its object keys
depend on. Real keyring and sealing; the in-memory store."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.core.settings import SealSettings
from archive.pipeline.quarantine import store_entries
from archive.seal import LocalKeyring
from archive.sources import QuarantineEntry, QuarantineReason, QuarantineScope
from tests.support.memstore import MemoryStore

UNTIL = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=365)


def _entry(encounter_id: str, resource_id: object) -> QuarantineEntry:
    return QuarantineEntry(
        reason=QuarantineReason.INVALID_DATETIME,
        scope=QuarantineScope.LINE,
        source_file="Observation.ndjson",
        line_number=7,
        resource_type="Observation",
        resource_id=resource_id,
        encounter_id=encounter_id,
        detail="Observation at Observation.ndjson:7: effectiveDateTime is invalid",
        raw_line=b'{"resourceType":"Observation","id":"4711","encounter":"Encounter/000123"}',
    )


def _index(entry: QuarantineEntry, keys: LocalKeyring) -> dict[str, object]:
    stored = store_entries(
        [entry], store=MemoryStore(), keys=keys, seal=SealSettings(), retain_until=UNTIL
    )
    assert stored.errors == 0
    (line,) = stored.index_lines
    value = json.loads(line)
    assert isinstance(value, dict)
    return value


def test_quarantine_index_holds_no_unkeyed_digest_of_a_short_id(tmp_path: Path) -> None:
    # An index line named encounter 000123 by SHA-256("000123"): hashing the numbers 0-999999
    # found it. Its digests are the keyring's keyed quarantine digests now.
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="k")
    line = _index(_entry("000123", "4711"), keys)
    assert line["encounter_id_digest"] == keys.quarantine_digest("000123")
    assert line["resource_id_digest"] == keys.quarantine_digest("4711")
    found = {hashlib.sha256(f"{n:06d}".encode()).hexdigest() for n in range(200)}
    found |= {hashlib.sha256(str(n).encode()).hexdigest() for n in range(5000)}
    assert not {str(v) for v in line.values()} & found


def test_quarantine_object_keys_do_not_depend_on_the_id_digests(tmp_path: Path) -> None:
    # Entries stored by an earlier release (unkeyed digests) are found again, not stored twice:
    # the key derives from the line, never from how ids are digested.
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="k")
    first = _index(_entry("000123", "4711"), keys)
    other = _index(_entry("000999", ["not", "an", "id"]), keys)
    assert first["object_key"] == other["object_key"]
    assert first["encounter_id_digest"] != other["encounter_id_digest"]
