"""One HOSO read back from its bytes: every FILEHOSO decoded, parsed, checked against its table.

Takes the HOSO's bytes (bounded by the reader's limit) and the facility's zone; returns a
:class:`Hoso` (the records of each table, by LOAIHOSO) or raises :class:`XmlRefusedError` /
:class:`~archive.sources.qd130.fields.FieldError`, which the collector turns into a quarantine
entry for the encounter. Every table must be well-formed and harmless; the tables listed in
:data:`~archive.sources.qd130.tables.SPECS` are also checked field by field, and every table that
names a ``MA_LK`` must name the HOSO's own (one HOSO is one encounter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Final

from archive.sources.qd130.hardening import XmlRefusedError, decode_base64, parse_inner
from archive.sources.qd130.tables import SPECS, Record, TableSpec
from archive.sources.quarantine import QuarantineReason

R = QuarantineReason
MAX_DEPTH: Final = 16  # the deepest table (root/list/record/field) needs 4
_DSIG: Final = b"http://www.w3.org/2000/09/xmldsig#"
_DSIG_SIGNATURE: Final = "{http://www.w3.org/2000/09/xmldsig#}Signature"
_ENVELOPE_HOSO: Final = "THONGTINHOSO/DANHSACHHOSO/HOSO"


@dataclass(frozen=True, slots=True)
class Limits:
    max_hoso_bytes: int
    max_table_bytes: int
    max_text_chars: int
    # A file is loaded whole (as an lxml tree, about twice its size in memory) to check its
    # facility signature; larger signed files are recorded "unverified".
    max_signed_file_bytes: int = 32 << 20


@dataclass(frozen=True, slots=True)
class Hoso:
    """The parsed tables of one HOSO. ``summary`` is its XML1 record; ``tables`` every checked
    table's records; ``kept`` the LOAIHOSO of the tables only carried in the original; ``signed``
    those that hold an XML signature of their own (not the facility's ``CHUKYDONVI``)."""

    summary: Record
    tables: dict[str, list[Record]]
    kept: tuple[str, ...]
    signed: tuple[str, ...] = ()

    def records(self, kind: str) -> list[Record]:
        return self.tables.get(kind, [])


def read_hoso(raw: bytes, tz: tzinfo, limits: Limits, *, embedded: bool = False) -> Hoso:
    """``raw`` is a HOSO's bytes; with ``embedded``, what a record embeds: those bytes or a whole
    single-HOSO file (a ``GIAMDINHHS`` envelope holding one HOSO)."""
    root = parse_inner(
        raw, "the HOSO", max_depth=MAX_DEPTH, max_text=limits.max_hoso_bytes, huge=True
    )
    if embedded and root.tag == "GIAMDINHHS":
        found = root.findall(_ENVELOPE_HOSO)
        root = found[0] if len(found) == 1 else root
    if root.tag != "HOSO":
        raise XmlRefusedError(R.MALFORMED_XML, "the HOSO element is not a HOSO")
    tables: dict[str, list[Record]] = {}
    kept: list[str] = []
    signed: list[str] = []
    for n, item in enumerate(root.iterchildren("FILEHOSO"), start=1):
        kind_text, content = _kind_and_content(item)
        kind = (kind_text or "").strip()
        if not kind or content is None:
            raise XmlRefusedError(R.MALFORMED_XML, f"FILEHOSO {n} lacks LOAIHOSO or NOIDUNGFILE")
        what = f"FILEHOSO {n} ({kind[:16]})"
        data = decode_base64(content.encode("ascii", "replace"), what, limit=limits.max_table_bytes)
        table = parse_inner(data, what, max_depth=MAX_DEPTH, max_text=limits.max_text_chars)
        if _DSIG in data and next(table.iter(_DSIG_SIGNATURE), None) is not None:
            signed.append(kind[:16])
        spec = SPECS.get(kind)
        if spec is None:
            kept.append(kind)
            continue
        if kind in tables:
            raise XmlRefusedError(R.MALFORMED_XML, f"the HOSO holds {kind} twice")
        records = _records(table, spec)
        for record in records:
            spec.check(record, tz)
        tables[kind] = records
    summary = _summary(tables)
    _same_episode(summary["MA_LK"], tables)
    return Hoso(summary=summary, tables=tables, kept=tuple(kept), signed=tuple(signed))


def _kind_and_content(item: Any) -> tuple[str | None, str | None]:
    """``findtext("LOAIHOSO")`` and ``findtext("NOIDUNGFILE")`` of a FILEHOSO in one walk of its
    children (ElementPath's lookups were a tenth of a HOSO's reading): the first such child's
    text, "" when it has none, None when there is no such child."""
    kind = content = None
    for child in item:
        tag = child.tag
        if tag == "LOAIHOSO":
            if kind is None:
                kind = child.text or ""
        elif tag == "NOIDUNGFILE" and content is None:
            content = child.text or ""
    return kind, content


def _records(root: Any, spec: TableSpec) -> list[Record]:
    if root.tag != spec.root:
        raise XmlRefusedError(R.MALFORMED_XML, f"{spec.kind} has the wrong root element")
    if not spec.record_path:
        return [_record(root, spec)]
    holder: Any = root
    for name in spec.record_path[:-1]:
        holder = holder.find(name) if holder is not None else None
    if holder is None:
        return []  # an empty detail table is allowed (no drugs, no results)
    return [_record(node, spec) for node in holder.findall(spec.record_path[-1])]


def _record(node: Any, spec: TableSpec) -> Record:
    """A record's fields, by name. The common record (flat, each field once, no signature) is
    read in one pass; anything else is read by :func:`_checked_record`, which says what is
    wrong with it or leaves its signature out."""
    children = list(node)
    record = {child.tag: (child.text or "").strip() for child in children}
    if (
        len(record) == len(children)
        and not any(map(len, children))
        and _DSIG_SIGNATURE not in record
    ):
        return record
    return _checked_record(node, spec)


def _checked_record(node: Any, spec: TableSpec) -> Record:
    record: Record = {}
    for child in node:
        if child.tag == _DSIG_SIGNATURE:
            continue  # the table's own signature (``Hoso.signed``), not a field
        name = child.tag[:40]
        if len(child):
            raise XmlRefusedError(R.MALFORMED_XML, f"{spec.kind} field {name} has children")
        if child.tag in record:
            raise XmlRefusedError(R.MALFORMED_XML, f"{spec.kind} repeats field {name}")
        record[child.tag] = (child.text or "").strip()
    return record


def _summary(tables: dict[str, list[Record]]) -> Record:
    found = tables.get("XML1", [])
    if len(found) != 1:
        raise XmlRefusedError(R.MALFORMED_XML, "the HOSO has no XML1 (encounter summary)")
    return found[0]


def _same_episode(key: str, tables: dict[str, list[Record]]) -> None:
    for kind, records in tables.items():
        if any(r.get("MA_LK", key) != key for r in records):
            raise XmlRefusedError(R.MALFORMED_XML, f"{kind} names a MA_LK other than its XML1's")
