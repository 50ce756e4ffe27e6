"""Small typed helpers over FHIR R4 JSON, the archive's conventions, and canonical bundle bytes.

Resources are plain ``dict`` objects as ``json.loads`` returns them; every accessor here is total
(wrong shapes give ``None``, never an exception), because the input comes from hospital systems we
do not control. Validation helpers return a short, PHI-free description of the problem or ``None``.

What the checks accept (documented here because the quarantine depends on it):

* **ids** — the FHIR rule ``[A-Za-z0-9-.]{1,64}`` and nothing else: path separators, control,
  invisible (zero-width) and non-ASCII look-alike characters (Cyrillic U+0430 for "a") are all
  refused.
* **ICD-10** (WHO, as used by the Vietnamese MOH list) — an upper-case letter, two digits, and
  optionally "." plus one or two digits ("J18.9", "F32.1", "V43.5", "A09", "S72.00"); the
  3-character category must fall in a WHO chapter range (``ICD10_CHAPTERS``), which refuses e.g.
  "E99", "D49", "K95" and the U-codes WHO has not assigned (U00-U49 provisional, e.g. U07.1
  COVID-19, and U82-U85 are accepted). Lower case, dotless forms ("J189"), a third decimal or
  letters after the dot are refused. It is a format and range check, not a lookup in the full
  code list (a code inside a range that does not exist, e.g. "I03", passes).
* **ICD-9-CM procedures** — two digits, optionally "." plus one or two digits ("47.01", "74.1").
* **text** — every string (keys included) of a resource must be free of C0/C1 control characters
  other than TAB, LF and CR, of unpaired surrogates, and of bidirectional overrides (which make a
  rendered PDF show something other than the data). Zero-width characters are allowed in text.
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

ACCIDENT_CODES: Final = frozenset("012345678")  # QĐ130 MA_TAI_NAN
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

# --- ids and references ---------------------------------------------------------------------------

_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_INVISIBLE: Final = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
)


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a FHIR id, in words that never repeat the id itself."""
    if not isinstance(value, str):
        return f"id is a JSON {type(value).__name__}, not a string"
    if _ID.fullmatch(value):
        return None
    if not value:
        return "id is empty"
    for char in value:
        if char in "/\\":
            return "id contains a path separator"
        if char in _INVISIBLE:
            return f"id contains the invisible character U+{ord(char):04X}"
        if unicodedata.category(char) in ("Cc", "Cs"):
            return f"id contains the control character U+{ord(char):04X}"
        if ord(char) > 0x7F:
            return f"id contains the non-ASCII (look-alike) character U+{ord(char):04X}"
        if not _ID.fullmatch(char):
            return f"id contains the character U+{ord(char):04X}, not allowed in FHIR ids"
    return "id is longer than 64 characters"


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


# --- codes ----------------------------------------------------------------------------------------

_ICD10: Final = re.compile(r"([A-Z][0-9]{2})(?:\.[0-9]{1,2})?")
_ICD9CM_PROCEDURE: Final = re.compile(r"[0-9]{2}(?:\.[0-9]{1,2})?")

# WHO ICD-10 chapters by 3-character category (inclusive). U: only what WHO has assigned.
ICD10_CHAPTERS: Final = (
    ("A00", "B99", "I"),
    ("C00", "C97", "II"),
    ("D00", "D48", "II"),
    ("D50", "D89", "III"),
    ("E00", "E90", "IV"),
    ("F00", "F99", "V"),
    ("G00", "G99", "VI"),
    ("H00", "H59", "VII"),
    ("H60", "H95", "VIII"),
    ("I00", "I99", "IX"),
    ("J00", "J99", "X"),
    ("K00", "K93", "XI"),
    ("L00", "L99", "XII"),
    ("M00", "M99", "XIII"),
    ("N00", "N99", "XIV"),
    ("O00", "O99", "XV"),
    ("P00", "P96", "XVI"),
    ("Q00", "Q99", "XVII"),
    ("R00", "R99", "XVIII"),
    ("S00", "T98", "XIX"),
    ("V01", "Y98", "XX"),
    ("Z00", "Z99", "XXI"),
    ("U00", "U49", "XXII"),
    ("U82", "U85", "XXII"),
)


def icd10_chapter(value: object) -> str | None:
    """The WHO chapter (Roman numeral) of a valid ICD-10 code, else ``None``."""
    if not isinstance(value, str):
        return None
    match = _ICD10.fullmatch(value)
    if match is None:
        return None
    category = match.group(1)
    for first, last, chapter in ICD10_CHAPTERS:
        if first <= category <= last:
            return chapter
    return None


def is_icd10(value: object) -> bool:
    return icd10_chapter(value) is not None


def is_icd9cm_procedure(value: object) -> bool:
    return isinstance(value, str) and _ICD9CM_PROCEDURE.fullmatch(value) is not None


# --- text -----------------------------------------------------------------------------------------

_BAD_CHARS: Final = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_BAD_TEXT: Final = re.compile(f"[{_BAD_CHARS}\ud800-\udfff]")
# The same on a raw NDJSON line: the characters themselves, or their JSON escapes. It may
# over-match ("\\b", an escaped valid surrogate pair), so a hit is confirmed on the parsed resource.
_BAD_RAW_CHAR: Final = _BAD_TEXT
_BAD_RAW_ESCAPE: Final = re.compile(
    r"\\(?:[bf]|u(?:00[01]|007[fF]|00[89]|[dD][89a-fA-F]|202[a-eA-E]|206[6-9]))"
)


def may_have_bad_text(line: str) -> bool:
    """Cheap pre-check on a raw line; ``False`` means :func:`text_problem` would return ``None``."""
    return bool(_BAD_RAW_CHAR.search(line) or _BAD_RAW_ESCAPE.search(line))


def text_problem(resource: object, *, root: str = "") -> str | None:
    """Where the first forbidden character sits, e.g. ``"Patient.name[0].text contains the
    control character U+0007"`` (the path and code point only, never the text)."""
    stack: list[tuple[Any, str]] = [(resource, root)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            found = _BAD_TEXT.search(node)
            if found:
                return f"{path or 'value'} contains {_describe(found.group())}"
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                found = _BAD_TEXT.search(key)
                if found:
                    return (
                        f"a key under {path or 'the resource'} contains {_describe(found.group())}"
                    )
                stack.append((value, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(node))))
    return None


def _describe(char: str) -> str:
    point = ord(char)
    if 0xD800 <= point <= 0xDFFF:
        return f"the unpaired surrogate U+{point:04X}"
    if unicodedata.category(char) == "Cf":
        return f"the bidirectional control U+{point:04X}"
    return f"the control character U+{point:04X}"


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
