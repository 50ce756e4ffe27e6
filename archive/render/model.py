"""The discharge summary as labelled text, and the helpers that read FHIR R4 into it.

A :class:`Summary` is layout-free and entirely strings, already cleaned (NFC, no control or
invisible format characters). A missing optional value is ``—``. The helpers never raise on odd
input: a wrong type reads as missing. :mod:`archive.render.sections` uses them to build the
sections; :mod:`archive.render.layout` draws them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

DASH = "—"
LOCAL_OFFSET = timedelta(hours=7)  # Vietnam; other offsets are printed explicitly


@dataclass(frozen=True, slots=True)
class Field:
    label: str
    value: str
    wide: bool = False  # spans both columns


@dataclass(frozen=True, slots=True)
class Fields:
    items: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]
    widths: tuple[float, ...]  # fractions of the text width
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Text:
    paragraphs: tuple[str, ...]


Block = Fields | Table | Text


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    encounter_id: str
    record_number: str  # urn:vn:moh:hsba, or "—"
    facility_code: str
    facility_name: str
    sections: tuple[Section, ...]


def clean(value: object) -> str:
    """One line of display text: NFC, controls to spaces, invisible format characters dropped."""
    text = _normalise(value)
    return re.sub(r"\s+", " ", text).strip()


def _normalise(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    text = unicodedata.normalize("NFC", value if isinstance(value, str) else str(value))
    if text.isprintable():  # no control or format character (nor line feed): nothing to drop
        return text
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":  # zero-width space/joiners, BOM, bidi marks, soft hyphen
            continue
        out.append(" " if category == "Cc" and ch != "\n" else ch)
    # NFC again: dropping a format character can bring a base letter and its mark together.
    return unicodedata.normalize("NFC", "".join(out))


def paragraphs(value: object) -> tuple[str, ...]:
    text = _normalise(value).replace("\r\n", "\n").replace("\r", "\n")
    return tuple(p for p in (clean(part) for part in text.split("\n")) if p)


def or_dash(value: object) -> str:
    return clean(value) or DASH


def get(node: Any, *path: str | int) -> Any:
    """``node[path[0]][path[1]]...`` or None when any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return None
            node = node[step]
        else:
            if not isinstance(node, Mapping):
                return None
            node = node.get(step)
    return node


def items(node: Any, *path: str | int) -> list[Any]:
    value = get(node, *path)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def identifier(resource: Any, system: str) -> str:
    for ident in items(resource, "identifier"):
        if ident.get("system") == system and clean(ident.get("value")):
            return clean(ident.get("value"))
    return DASH


def extension(resource: Any, url: str) -> str:
    for ext in items(resource, "extension"):
        if ext.get("url") == url:
            for key, value in sorted(ext.items()):
                if key.startswith("value") and clean(value):
                    return clean(value)
    return DASH


def coding(concept: Any, system: str | None = None) -> Mapping[str, Any]:
    codings = items(concept, "coding")
    preferred = [c for c in codings if system is None or c.get("system") == system]
    found: Mapping[str, Any] = (preferred or codings or [{}])[0]
    return found


def code_and_name(concept: Any, system: str | None = None) -> tuple[str, str]:
    c = coding(concept, system)
    name = clean(c.get("display")) or clean(get(concept, "text"))
    return or_dash(c.get("code")), name or DASH


class Resolver:
    """Finds Bundle entries by reference ("Patient/p1", or an entry's fullUrl)."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.resources: list[Mapping[str, Any]] = []
        self._by_ref: dict[str, Mapping[str, Any]] = {}
        for entry in items(bundle, "entry"):
            resource = entry.get("resource")
            if not isinstance(resource, Mapping):
                continue
            self.resources.append(resource)
            if isinstance(entry.get("fullUrl"), str):
                self._by_ref[entry["fullUrl"]] = resource
            if isinstance(resource.get("id"), str):
                self._by_ref[f"{resource.get('resourceType')}/{resource['id']}"] = resource

    def of_type(self, resource_type: str) -> list[Mapping[str, Any]]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]

    def first(self, resource_type: str) -> Mapping[str, Any]:
        found = self.of_type(resource_type)
        return found[0] if found else {}

    def follow(self, reference: Any, resource_type: str | None = None) -> Mapping[str, Any]:
        ref = get(reference, "reference")
        target = self._by_ref.get(ref) if isinstance(ref, str) else None
        if target is None and resource_type is not None:
            # Bundles from one encounter hold one Patient/Organization: use it when unlinked.
            return self.first(resource_type)
        return target or {}


def when(value: Any) -> str:
    """A FHIR dateTime as dd/mm/yyyy HH:MM (the source's own clock); unparsable text as is."""
    text = clean(value) if isinstance(value, str) else ""
    if len(text) <= 10:
        return day(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    shown = f"{moment:%d/%m/%Y %H:%M}"
    offset = moment.utcoffset()
    if offset is not None and offset != LOCAL_OFFSET:
        zone = f"{moment:%z}"
        shown += f" (UTC{zone[:3]}:{zone[3:]})"
    return shown


def day(value: Any) -> str:
    """A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) in Vietnamese order."""
    text = clean(value) if isinstance(value, str) else ""
    if re.fullmatch(r"\d{4}", text):
        return text
    if re.fullmatch(r"\d{4}-\d{2}", text):
        return f"{text[5:7]}/{text[:4]}"
    try:
        return f"{date.fromisoformat(text[:10]):%d/%m/%Y}" if text else DASH
    except ValueError:
        return text


def number(value: Any) -> str:
    """A FHIR decimal with a decimal comma, never in exponent notation."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return DASH
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        return or_dash(value)
    if not parsed.is_finite():
        return or_dash(value)
    return format(parsed, "f").replace(".", ",")


def quantity(node: Any) -> str:
    """An Observation value: valueQuantity, or a text, code or boolean value."""
    q = get(node, "valueQuantity")
    if isinstance(q, Mapping):
        comparator = clean(q.get("comparator"))
        return comparator + number(q.get("value")) if q.get("value") is not None else DASH
    for key in ("valueString", "valueCodeableConcept", "valueInteger", "valueBoolean"):
        value = get(node, key)
        if isinstance(value, Mapping):
            return or_dash(value.get("text") or get(coding(value), "display"))
        if isinstance(value, bool):
            return "Có / Yes" if value else "Không / No"
        if value is not None:
            return or_dash(value)
    return DASH
