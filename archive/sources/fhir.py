"""Small typed helpers over FHIR R4 JSON, the archive's conventions, and canonical bundle bytes.

Resources are plain ``dict`` objects as ``json.loads`` returns them; every accessor here is total
(wrong shapes give ``None``, never an exception), because the input comes from hospital systems we
do not control. What the collector refuses (bad ids, codes and text) is decided in
:mod:`archive.sources.validation`; this module only reads and writes the JSON.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, tzinfo
from typing import Any, Final, NamedTuple

Resource = dict[str, Any]

# --- systems and extension URLs (the conventions shared with the renderer) -----------------------

SYS_ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
SYS_ICD9CM: Final = "http://hl7.org/fhir/sid/icd-9-cm"
SYS_LOINC: Final = "http://loinc.org"
SYS_UCUM: Final = "http://unitsofmeasure.org"
SYS_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SYS_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SYS_DIAGNOSIS_ROLE: Final = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
SYS_DISCHARGE: Final = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
SYS_CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
SYS_CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SYS_CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SYS_OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
SYS_CCCD: Final = "urn:vn:cccd"
SYS_BHYT: Final = "urn:vn:bhyt"
SYS_PATIENT: Final = "urn:vn:moh:patient"
SYS_FACILITY: Final = "urn:vn:moh:facility"
SYS_PRACTITIONER: Final = "urn:vn:moh:practitioner"
SYS_DEPARTMENT: Final = "urn:vn:moh:department"
SYS_HSBA: Final = "urn:vn:moh:hsba"
SYS_MA_LK: Final = "urn:vn:moh:ma-lk"
EXT_ACCIDENT: Final = "urn:vn:moh:accident-code"
EXT_TREATMENT_RESULT: Final = "urn:vn:moh:treatment-result"
LOINC_HOSPITAL_COURSE: Final = "8648-8"

BUNDLE_ORDER: Final = (
    "Encounter",
    "Patient",
    "Organization",
    "Practitioner",
    "Condition",
    "Procedure",
    "MedicationRequest",
    "Observation",
)

# --- references -----------------------------------------------------------------------------------


class Ref(NamedTuple):
    """A resolved literal reference: ``Patient/123`` is ``Ref("Patient", "123")``."""

    resource_type: str
    id: str


_ABSOLUTE_REF: Final = re.compile(
    r"https?://\S+?/([A-Z][A-Za-z]{1,63})/([^/]+)(?:/_history/[^/]+)?"
)


def parse_reference(value: object) -> Ref | None:
    """``Type/id``, ``Type/id/_history/v`` or ``https://base/Type/id``; contained (``#x``) and
    ``urn:`` references give ``None``.

    The id of a relative reference is deliberately lenient (``Patient/a/b`` gives id ``a/b``) so
    that a bad id is reported as INVALID_ID on the resource that carries it.
    """
    return _parse_reference(value) if isinstance(value, str) else None


def _parse_reference(value: str) -> Ref | None:
    # The same few references recur in every resource; only short ones are cached, so a hostile
    # export cannot fill the cache with huge strings.
    return _parse_cached(value) if len(value) <= 256 else _parse_uncached(value)


def _parse_uncached(value: str) -> Ref | None:
    if value.startswith(("http://", "https://")):
        match = _ABSOLUTE_REF.fullmatch(value)
        return Ref(match.group(1), match.group(2)) if match else None
    kind, _, rest = value.partition("/")
    if not (rest and 2 <= len(kind) <= 64 and kind.isascii() and kind.isalpha()):
        return None
    if not kind[0].isupper():
        return None
    head, history, version = rest.rpartition("/_history/")
    if history and head and version and "/" not in version:
        rest = head
    return Ref(kind, rest)


_parse_cached: Final = functools.lru_cache(maxsize=1024)(_parse_uncached)


def reference(resource: object, key: str) -> Ref | None:
    """The reference held in ``resource[key]`` (a FHIR ``Reference`` object), if any."""
    if not isinstance(resource, dict):
        return None
    target = resource.get(key)
    return parse_reference(target.get("reference")) if isinstance(target, dict) else None


def iter_references(resource: object) -> Iterator[Ref]:
    """Every literal reference anywhere in ``resource`` (each ``{"reference": ...}`` object)."""
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            parsed = parse_reference(node.get("reference"))
            if parsed is not None:
                yield parsed
            node = node.values()
        elif not isinstance(node, list):
            continue
        stack.extend(child for child in node if isinstance(child, (dict, list)))


def loads(text: str) -> tuple[Any, tuple[Ref, ...]]:
    """Parse one JSON text and collect its literal references on the way (cheaper than a walk).

    NaN/Infinity are refused (they are not JSON); raw control characters inside strings are
    accepted so that :func:`text_problem` can report where they are. Raises ``ValueError``
    (``json.JSONDecodeError`` included) or ``RecursionError``.
    """
    found: list[str] = []

    def hook(obj: dict[str, Any]) -> dict[str, Any]:
        value = obj.get("reference")
        if value.__class__ is str:
            found.append(value)
        return obj

    value = json.loads(text, strict=False, parse_constant=_refuse_constant, object_hook=hook)
    refs = [_parse_reference(r) for r in found]
    return value, tuple([r for r in refs if r is not None])


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# --- codings, identifiers, extensions -------------------------------------------------------------


def codings(concept: object) -> list[dict[str, Any]]:
    """The ``coding`` list of a CodeableConcept (only the dict members)."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [c for c in concept["coding"] if isinstance(c, dict)]


def code(concept: object, system: str) -> str | None:
    """The first code of ``system`` in a CodeableConcept."""
    for coding in codings(concept):
        value = coding.get("code")
        if coding.get("system") == system and isinstance(value, str):
            return value
    return None


def identifier(resource: object, system: str) -> str | None:
    """The value of the first identifier of ``system``."""
    items = resource.get("identifier") if isinstance(resource, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("system") == system:
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


def extension_code(resource: object, url: str) -> str | None:
    """``valueCode`` of the first extension with ``url``."""
    items = resource.get("extension") if isinstance(resource, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("url") == url:
            value = item.get("valueCode")
            return value if isinstance(value, str) else None
    return None


def resources_of(bundle: Resource, resource_type: str) -> list[Resource]:
    """The resources of one type in a bundle, in bundle order."""
    entries = bundle.get("entry")
    found = [e.get("resource") for e in entries if isinstance(e, dict)] if entries else []
    return [r for r in found if isinstance(r, dict) and r.get("resourceType") == resource_type]


def resolve(bundle: Resource, ref: Ref | None) -> Resource | None:
    """The bundle's resource that ``ref`` points at."""
    if ref is None:
        return None
    for resource in resources_of(bundle, ref.resource_type):
        if resource.get("id") == ref.id:
            return resource
    return None


# --- dates ----------------------------------------------------------------------------------------


def parse_datetime(value: object, *, date_tz: tzinfo) -> datetime | None:
    """A FHIR ``dateTime`` as an aware datetime; a bare date is midnight in ``date_tz`` (the
    facility's zone). Partial dates, times without an offset and non-strings give ``None``."""
    if not isinstance(value, str):
        return None
    if len(value) == 10:
        try:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=date_tz)
        except ValueError:
            return None
    if len(value) < 20 or value[10] != "T":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# --- bundles and canonical bytes ------------------------------------------------------------------


def collection_bundle(bundle_id: str, resources: Iterable[Resource]) -> Resource:
    """A ``collection`` Bundle in the archive's order: Encounter, Patient, Organization,
    Practitioner, Condition, Procedure, MedicationRequest, Observation; by id within a type, so
    the bundle does not depend on the order of the export files."""

    def order(resource: Resource) -> tuple[int, str]:
        kind = resource.get("resourceType")
        rank = BUNDLE_ORDER.index(kind) if kind in BUNDLE_ORDER else len(BUNDLE_ORDER)
        return rank, str(resource.get("id"))

    entries = [
        {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r}
        for r in sorted(resources, key=order)
    ]
    return {"resourceType": "Bundle", "type": "collection", "id": bundle_id, "entry": entries}


def nfc(value: Any) -> Any:
    """A copy of a JSON value with every string (keys included) in Unicode NFC."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {nfc(k): nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nfc(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """The archive's canonical bytes: NFC strings, sorted keys, no whitespace, UTF-8.

    The same value always gives the same bytes; the PDF embeds them and the catalog stores their
    SHA-256. Raises ``ValueError`` for NaN/Infinity and for unpaired surrogates (which the
    collector quarantines before they get here).
    """
    return canonical_pair(value)[1]


def canonical_pair(value: Any) -> tuple[Any, bytes]:
    """``(nfc(value), canonical_json(value))``, normalising only when something is not NFC."""
    text = _dumps(value)
    # The text is NFC exactly when every string in it is (JSON's syntax characters and escapes
    # are ASCII and never compose), so the copy is needed only for the rare non-NFC input.
    if unicodedata.is_normalized("NFC", text):
        return value, text.encode("utf-8")
    normalized = nfc(value)
    return normalized, _dumps(normalized).encode("utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
