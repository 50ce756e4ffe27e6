"""What a line's raw bytes say without parsing it: its references and ids, or a salvaged guess.

Pass 2 reads the references and ids of a line with a byte-level scan and parses only the lines
that matter tonight, which is most of the collector's speed on a large export. Without ``\\u`` or
``\\/`` escapes every reference and id of a JSON line appears literally, so the scan can
over-match (harmless: pass 3 checks on the parsed resource) but never miss one; a line with such
escapes is parsed instead. A line that does not parse at all is tied to its encounter and
resource by the ``salvaged_*`` guesses, so its quarantine entry can still name them (as digests).
"""

from __future__ import annotations

import json
import re
from typing import Final

from archive.sources import fhir
from archive.sources.fhir import Ref

_RAW_REFERENCE: Final = re.compile(rb'"reference"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RAW_ID: Final = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')
_SALVAGE_ENCOUNTER: Final = re.compile(rb'"reference"\s*:\s*"Encounter/([^"\\]{1,256})"')
_SALVAGE_ID: Final = re.compile(rb'"id"\s*:\s*"([^"\\]{0,256})"')


def scan(raw: bytes, *, ids: bool) -> tuple[tuple[Ref, ...], list[str]] | None:
    """The references (and ``ids``) a line may hold, or ``None`` when it must be parsed."""
    if b"\\u" in raw or b"\\/" in raw:
        return None
    refs = [fhir.parse_reference(_unquote(m)) for m in _RAW_REFERENCE.findall(raw)]
    found = [_unquote(m) for m in _RAW_ID.findall(raw)] if ids else []
    return tuple(r for r in refs if r is not None), [i for i in found if i is not None]


def _unquote(content: bytes) -> str | None:
    try:
        text = content.decode("utf-8")
        value = json.loads(f'"{text}"') if "\\" in text else text
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def salvaged_id(raw: bytes) -> str | None:
    """The first ``"id":"..."`` of a line that did not parse (normally the resource's own)."""
    match = _SALVAGE_ID.search(raw)
    return match.group(1).decode("utf-8", "replace") if match else None


def salvaged_encounter(raw: bytes) -> str | None:
    """The id of the first ``Encounter/...`` reference of a line that did not parse."""
    match = _SALVAGE_ENCOUNTER.search(raw)
    return match.group(1).decode("utf-8", "replace") if match else None
