"""What the quarantine accepts: FHIR ids, ICD-10 and ICD-9-CM codes, and the characters of text.

The collector quarantines a record for failing one of these checks, so the rules are spelled out
here in one place (and covered by tests) rather than scattered over the collector. Each check
returns a short, PHI-free description of the problem (or ``None``), or a plain ``bool``:

* **ids** — the FHIR rule ``[A-Za-z0-9-.]{1,64}`` and nothing else: path separators, control,
  invisible (zero-width) and non-ASCII look-alike characters (Cyrillic U+0430 for "a") are all
  refused. Stricter than FHIR, an id of dots only ("." and "..", which the pattern allows) is
  refused too: an encounter id names a folder in a dossier, where those mean "here" and "parent"
  (and Windows drops trailing dots, so "..." would become nothing).
* **ICD-10** (WHO, as used by the Vietnamese MOH list) — an upper-case letter, two digits, and
  optionally "." plus one or two digits ("J18.9", "F32.1", "V43.5", "A09", "S72.00"); the
  3-character category must fall in a WHO chapter range (``ICD10_CHAPTERS``), which refuses e.g.
  "E99", "D49", "K95" and the U-codes WHO has not assigned (U00-U49 provisional, e.g. U07.1
  COVID-19, and U82-U85 are accepted). Lower case, dotless forms ("J189"), a third decimal or
  letters after the dot are refused. It is a format and range check, not a lookup in the full
  code list (a code inside a range that does not exist, e.g. "I03", passes).
* **ICD-9-CM procedures** — two digits, optionally "." plus one or two digits ("47.01", "74.1").
* **accident codes** — QĐ 130's MA_TAI_NAN, one digit 0-8.
* **text** — every string (keys included) of a resource must be free of C0/C1 control characters
  other than TAB, LF and CR, of unpaired surrogates, and of bidirectional overrides (which make a
  rendered PDF show something other than the data). Zero-width characters are allowed in text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

ACCIDENT_CODES: Final = frozenset("012345678")  # QĐ130 MA_TAI_NAN

# --- ids ------------------------------------------------------------------------------------------

_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_INVISIBLE: Final = frozenset(
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
)


def is_valid_id(value: object) -> bool:
    return id_problem(value) is None


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a FHIR id we accept, in words that never repeat the id itself."""
    if not isinstance(value, str):
        return f"id is a JSON {type(value).__name__}, not a string"
    if value and not value.strip("."):
        return "id is made of only dots, which a file path reads as a folder"
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
