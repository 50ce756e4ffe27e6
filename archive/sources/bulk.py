"""Collect finished encounters from a FHIR Bulk Data (``$export``) NDJSON directory.

Three streaming passes keep memory at O(index of the selected encounters), not O(export):

1. ``Encounter`` files: select ``status == "finished"`` with ``period.end`` in the window (a
   finished encounter without a usable ``period.end`` is quarantined: its day cannot be known) and
   note the Patients, Organizations, Practitioners and diagnosis Conditions they reference.
2. the other files, once each (Condition, Procedure, MedicationRequest, Observation, then Patient,
   Organization, Practitioner): remember only the *position* (file, line, offset, length) of the
   lines a selected encounter needs: resources whose ``encounter`` is selected, diagnosis
   Conditions, and the Patients/Organizations/Practitioners any of them references. A byte-level
   scan of each line's references and ids decides this without parsing; lines that name only
   other encounters are left, unparsed, for the night their encounter is collected.
3. per selected encounter, sorted by id: re-read and parse its lines, validate, assemble, yield.

Nothing bad raises: a bad line becomes a ``LINE`` quarantine entry, and an encounter that cannot be
archived intact (a bad line of its own, an unresolved reference, an invalid id/code/text...) an
``ENCOUNTER`` entry. Only an unusable export raises :class:`SourceError`. A line that does not
parse and names no encounter (or none the scan can see) is quarantined on its own.

Output order: line entries in file order as they are met, then the encounters (bundles and
encounter entries, each followed by its line entries) sorted by encounter id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Final, NamedTuple

from archive.core.errors import SourceError
from archive.sources import fhir
from archive.sources.fhir import Ref, Resource
from archive.sources.model import CollectedItem, EncounterBundle, Window
from archive.sources.quarantine import (
    QuarantineEntry,
    QuarantineReason,
    QuarantineScope,
    id_digest,
)

__all__ = ["DEFAULT_MAX_LINE_BYTES", "MANIFEST_NAME", "Window", "collect"]

R = QuarantineReason
CLINICAL: Final = ("Condition", "Procedure", "MedicationRequest", "Observation")
DIRECTORY: Final = ("Patient", "Organization", "Practitioner")
TYPES: Final = ("Encounter", *CLINICAL, *DIRECTORY)
MANIFEST_NAME: Final = "manifest.json"
DEFAULT_MAX_LINE_BYTES: Final = 16 * 1024 * 1024
_SAFE_FILE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.ndjson")
_FACILITY_CODE: Final = re.compile(r"[0-9]{5}")
_SALVAGE_ENCOUNTER: Final = re.compile(rb'"reference"\s*:\s*"Encounter/([^"\\]{1,256})"')
_SALVAGE_ID: Final = re.compile(rb'"id"\s*:\s*"([^"\\]{0,256})"')


def collect(
    export_dir: Path,
    *,
    window: Window,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[CollectedItem]:
    """Stream the encounters of ``export_dir`` whose ``period.end`` falls in ``window``.

    The export is checked now (raising :class:`SourceError` when it is unusable); records are
    read lazily as the iterator is consumed. ``on_selected`` learns how many encounters were
    selected once the export has been indexed, before the first bundle (for progress bars).
    """
    if not 0 < max_line_bytes < 1 << 32:
        raise ValueError("max_line_bytes must be between 1 and 4 GiB")
    files = _discover(Path(export_dir), window)
    collector = _Collector(files, window=window, max_line_bytes=max_line_bytes)
    return collector.run(on_selected)


# --- the export's files ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _File:
    index: int
    name: str
    path: Path
    resource_type: str
    expected_count: int | None  # from the manifest's "count", when given


def _discover(export_dir: Path, window: Window) -> list[_File]:
    if not export_dir.is_dir():
        raise SourceError(
            f"export directory {export_dir} does not exist or is not a directory: "
            "run the Bulk Data export first, or point the collector at its output directory"
        )
    manifest = export_dir / MANIFEST_NAME
    if manifest.is_file():
        listed = _read_manifest(manifest, window)
    else:
        listed = [(t, f"{t}.ndjson", None) for t in TYPES if (export_dir / f"{t}.ndjson").is_file()]
    listed.sort(key=lambda item: TYPES.index(item[0]))  # stable: manifest order within a type
    files = [_File(i, n, export_dir / n, t, c) for i, (t, n, c) in enumerate(listed)]
    if len(files) > 0xFFFF:
        raise SourceError(f"{export_dir} lists more than 65535 files: export in smaller jobs")
    if not any(f.resource_type == "Encounter" for f in files):
        raise SourceError(
            f"no Encounter.ndjson in {export_dir}: the export is incomplete; "
            "export again including the Encounter type"
        )
    for file in files:
        if not file.path.is_file():
            raise SourceError(
                f"{MANIFEST_NAME} lists {file.name} but it is not in {export_dir}: "
                "the download is incomplete; fetch the export again"
            )
    return files


def _read_manifest(path: Path, window: Window) -> list[tuple[str, str, int | None]]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise SourceError(
            f"{path} cannot be read as JSON ({type(e).__name__}): fetch the export again"
        ) from e
    output = doc.get("output") if isinstance(doc, dict) else None
    taken = fhir.parse_datetime(doc.get("transactionTime"), date_tz=window.tz) if output else None
    if not isinstance(output, list) or taken is None:
        raise SourceError(
            f"{path} is not a Bulk Data manifest (needs transactionTime and output): "
            "fetch the export again"
        )
    if taken < window.end:
        # Encounters finished between the export and the end of the window would be missed
        # for good: the next night collects the next day.
        raise SourceError(
            f"the export was taken at {taken.isoformat()}, before the window closes at "
            f"{window.end.isoformat()}: run the export after the window has closed"
        )
    entries = [entry for item in output if (entry := _manifest_entry(path, item)) is not None]
    return list({name: (kind, name, count) for kind, name, count in entries}.values())


def _manifest_entry(path: Path, item: object) -> tuple[str, str, int | None] | None:
    if not isinstance(item, dict) or item.get("type") not in TYPES:
        return None
    url = item.get("url")
    name = url.rsplit("/", 1)[-1] if isinstance(url, str) else ""
    if not _SAFE_FILE_NAME.fullmatch(name):
        raise SourceError(
            f"{path} lists an output file whose name is not a plain *.ndjson file name: "
            "check the export; the collector only reads files inside the export directory"
        )
    count = item.get("count")
    return str(item["type"]), name, count if isinstance(count, int) else None


# --- reading lines --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    file: _File
    number: int  # 1-based
    offset: int
    raw: bytes  # without the line break; only the first max_line_bytes when oversized
    oversized: int | None  # the full length, when longer than the limit


def _lines(file: _File, limit: int) -> Iterator[_Line]:
    count = offset = number = 0
    with _open(file) as handle:
        while raw := _read(handle, file, limit + 1):
            number += 1
            size, oversized = len(raw), None
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            elif len(raw) > limit:
                size += _skip_rest(handle, file)
                raw, oversized = raw[:limit], size
            if raw.strip():
                count += 1
                yield _Line(file, number, offset, raw, oversized)
            offset += size
    if file.expected_count is not None and count != file.expected_count:
        raise SourceError(
            f"{file.name} holds {count} resources but the manifest says {file.expected_count}: "
            "the file is truncated or was changed; fetch the export again"
        )


def _open(file: _File, *, random: bool = False) -> IO[bytes]:
    # Unbuffered for reading indexed lines back: a seek would throw a large buffer away.
    try:
        return file.path.open("rb", buffering=0 if random else 1 << 18)
    except OSError as e:
        raise SourceError(f"cannot open {file.name} ({e.strerror}): check permissions") from e


def _read(handle: IO[bytes], file: _File, size: int) -> bytes:
    try:
        return handle.readline(size)
    except OSError as e:
        raise SourceError(f"cannot read {file.name} ({e.strerror}): check the disk") from e


def _skip_rest(handle: IO[bytes], file: _File) -> int:
    skipped = 0
    while chunk := _read(handle, file, 1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


class _Bad(NamedTuple):
    reason: QuarantineReason
    detail: str


class _Parsed(NamedTuple):
    resource: Resource
    refs: tuple[Ref, ...]  # every literal reference in it
    text: str


def _parse(line: _Line, limit: int) -> _Parsed | _Bad:
    if line.oversized is not None:
        return _Bad(R.OVERSIZED_LINE, f"line of {line.oversized} bytes exceeds {limit}; kept")
    return _decode(line.raw, line.file, first=line.number == 1)


def _decode(raw: bytes, file: _File, *, first: bool) -> _Parsed | _Bad:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return _Bad(R.MALFORMED_JSON, f"not valid UTF-8 (byte {e.start})")
    try:
        value, refs = fhir.loads(text.removeprefix("\ufeff") if first else text)
    except json.JSONDecodeError as e:
        return _Bad(R.MALFORMED_JSON, f"not valid JSON ({e.msg}, column {e.colno})")
    except (ValueError, RecursionError):
        return _Bad(R.MALFORMED_JSON, "not valid JSON (NaN/Infinity, huge number or deep nesting)")
    if not isinstance(value, dict):
        return _Bad(R.MALFORMED_JSON, f"a JSON {type(value).__name__}, not an object")
    if value.get("resourceType") != file.resource_type:
        return _Bad(R.MALFORMED_RESOURCE, f"resourceType is not {file.resource_type}")
    return _Parsed(value, refs, text)


# Pass 2 reads the references and ids of a line with this byte-level scan and parses only the
# lines that matter tonight. Without "\u" or "\/" escapes every reference and id of a JSON line
# appears literally, so the scan can over-match (harmless: pass 3 checks on the parsed resource)
# but never miss one; a line with such escapes is parsed instead.
_RAW_REFERENCE: Final = re.compile(rb'"reference"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RAW_ID: Final = re.compile(rb'"id"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _scan(raw: bytes, *, ids: bool) -> tuple[tuple[Ref, ...], list[str]] | None:
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


# --- the collector --------------------------------------------------------------------------------


def _position(line: _Line) -> int:
    # One int per indexed line keeps the index small: offset, length, line number, file index.
    return (((line.offset << 32 | len(line.raw)) << 40 | line.number) << 16) | line.file.index


def _unpack(position: int) -> tuple[int, int, int, int]:
    """(file index, line number, length, offset) of a packed position."""
    index, position = position & 0xFFFF, position >> 16
    number, position = position & (1 << 40) - 1, position >> 40
    return index, number, position & 0xFFFFFFFF, position >> 32


@dataclass(frozen=True, slots=True)
class _Problem:
    reason: QuarantineReason
    detail: str
    line: int | None = None  # position of the bad line, when it is not the Encounter's
    emitted: bool = False  # its LINE entry was already yielded


@dataclass(slots=True)
class _Encounter:
    id: str
    line: int
    problems: list[_Problem]
    members: list[int] = field(default_factory=list)  # positions of its clinical lines


class _Loaded(NamedTuple):
    line: int
    raw: bytes
    resource: Resource
    refs: tuple[Ref, ...]
    text: str


class _Collector:
    def __init__(self, files: list[_File], *, window: Window, max_line_bytes: int) -> None:
        self.files = files
        self.window = window
        self.limit = max_line_bytes
        self.encounters: list[_Encounter] = []
        self.by_id: dict[str, int] = {}  # selected encounter id -> first ordinal
        self.want_condition: dict[str, list[int]] = {}  # diagnosis Condition id -> ordinals
        self.want_directory: dict[str, set[str]] = {t: set() for t in DIRECTORY}
        self.found: dict[str, dict[str, int]] = {t: {} for t in DIRECTORY}  # id -> position
        self.duplicates: set[Ref] = set()
        self.broken: dict[Ref, _Problem] = {}  # wanted directory resources on malformed lines
        self.emitted: set[int] = set()  # positions whose LINE entry was yielded
        self.handles: dict[int, IO[bytes]] = {}

    def run(self, on_selected: Callable[[int], None] | None = None) -> Iterator[CollectedItem]:
        for file in self.files:
            for line in _lines(file, self.limit):
                if file.resource_type == "Encounter":
                    yield from self._select(line)
                else:
                    yield from self._index(line)
        if on_selected is not None:
            on_selected(len(self.encounters))
        with ExitStack() as stack:
            self.handles = {f.index: stack.enter_context(_open(f, random=True)) for f in self.files}
            order = sorted(range(len(self.encounters)), key=lambda o: self.encounters[o].id)
            for ordinal in order:
                yield from self._finish(self.encounters[ordinal])

    # --- pass 1: encounters -----------------------------------------------------------------------

    def _select(self, line: _Line) -> Iterator[QuarantineEntry]:
        parsed = _parse(line, self.limit)
        if isinstance(parsed, _Bad):
            # Which encounter this was, and whether it is in the window, cannot be known.
            yield self._line_entry(line, parsed, None, id_digest(_salvaged_id(line.raw)))
            return
        encounter = parsed.resource
        if encounter.get("status") != "finished":
            return
        enc_id = encounter.get("id")
        if not isinstance(enc_id, str):
            bad = _Bad(R.INVALID_ID, "finished Encounter without a string id")
            yield self._line_entry(line, bad, None, id_digest(enc_id))
            return
        problems = self._period_end_problems(encounter)
        if problems is not None:  # None: finished outside the window
            self._register(enc_id, _position(line), parsed, problems)

    def _period_end_problems(self, encounter: Resource) -> list[_Problem] | None:
        period = encounter.get("period")
        end = period.get("end") if isinstance(period, dict) else None
        if end is None:
            return [_Problem(R.MISSING_PERIOD_END, "finished Encounter has no period.end")]
        moment = fhir.parse_datetime(end, date_tz=self.window.tz)
        if moment is None:
            return [_Problem(R.INVALID_DATETIME, "Encounter.period.end is not a FHIR dateTime")]
        return [] if moment in self.window else None

    def _register(self, enc_id: str, line: int, parsed: _Parsed, problems: list[_Problem]) -> None:
        ordinal = len(self.encounters)
        self.encounters.append(_Encounter(enc_id, line, problems))
        first = self.by_id.setdefault(enc_id, ordinal)
        if first != ordinal:
            twice = _Problem(R.DUPLICATE_ID, "two finished Encounters in the window share this id")
            self.encounters[first].problems.append(twice)
            problems.append(twice)
        if problems:
            return
        self._want_directory(parsed.refs)
        for target in _diagnoses(parsed.resource):
            self.want_condition.setdefault(target.id, []).append(ordinal)

    def _want_directory(self, refs: tuple[Ref, ...]) -> None:
        for target in refs:
            if target.resource_type in DIRECTORY:
                self.want_directory[target.resource_type].add(target.id)

    # --- pass 2: index the other files ---------------------------------------------------------

    def _index(self, line: _Line) -> Iterator[QuarantineEntry]:
        kind = line.file.resource_type
        wants_ids = kind == "Condition" or kind in DIRECTORY
        scanned = _scan(line.raw, ids=wants_ids) if line.oversized is None else None
        if scanned is not None and self._index_scanned(line, *scanned):
            return
        parsed = _parse(line, self.limit)
        if isinstance(parsed, _Bad):
            yield self._bad_member_line(line, parsed)
            return
        rid = parsed.resource.get("id")
        if kind in DIRECTORY:
            if isinstance(rid, str) and rid in self.want_directory[kind]:
                self._found(kind, rid, line)
            return
        owners = self._owners(kind, rid, parsed.resource)
        if owners:
            self._add_member(line, owners, parsed.refs)

    def _index_scanned(self, line: _Line, refs: tuple[Ref, ...], ids: list[str]) -> bool:
        """Index from the scan; ``False`` when the scan cannot tell whose line this is."""
        kind = line.file.resource_type
        if kind in DIRECTORY:
            for rid in ids:
                if rid in self.want_directory[kind]:
                    self._found(kind, rid, line)
            return bool(ids)
        encounters = [r.id for r in refs if r.resource_type == "Encounter"]
        owners = [self.by_id[e] for e in encounters if e in self.by_id]
        if kind == "Condition":
            owners += [o for rid in ids for o in self.want_condition.get(rid, ())]
        if owners:
            self._add_member(line, list(dict.fromkeys(owners)), refs)
        # Lines that name only other encounters belong to other nights.
        return bool(owners or encounters)

    def _found(self, kind: str, rid: str, line: _Line) -> None:
        position = _position(line)
        if self.found[kind].setdefault(rid, position) != position:
            self.duplicates.add(Ref(kind, rid))

    def _add_member(self, line: _Line, owners: list[int], refs: tuple[Ref, ...]) -> None:
        position = _position(line)
        for ordinal in owners:
            self.encounters[ordinal].members.append(position)
        self._want_directory(refs)

    def _owners(self, kind: str, rid: object, resource: Resource) -> list[int]:
        owners: list[int] = []
        target = fhir.reference(resource, "encounter")
        if target is not None and target.resource_type == "Encounter" and target.id in self.by_id:
            owners.append(self.by_id[target.id])
        if kind == "Condition" and isinstance(rid, str):
            owners.extend(self.want_condition.get(rid, ()))
        return list(dict.fromkeys(owners))

    def _bad_member_line(self, line: _Line, bad: _Bad) -> QuarantineEntry:
        """A line that is not a usable resource, tied by a raw-bytes guess to its encounter."""
        kind, rid = line.file.resource_type, _salvaged_id(line.raw)
        enc_match = _SALVAGE_ENCOUNTER.search(line.raw)
        enc_id = enc_match.group(1).decode("utf-8", "replace") if enc_match else None
        owners = [self.by_id[enc_id]] if enc_id in self.by_id else []
        if kind == "Condition" and rid is not None:
            owners.extend(self.want_condition.get(rid, ()))
        detail = f"{kind} at {line.file.name}:{line.number}: {bad.detail}"
        problem = _Problem(bad.reason, detail, _position(line), emitted=True)
        if kind in DIRECTORY and rid is not None and rid in self.want_directory[kind]:
            self.broken.setdefault(Ref(kind, rid), problem)
        for ordinal in dict.fromkeys(owners):
            self.encounters[ordinal].problems.append(problem)
        enc_digest = id_digest(self.encounters[owners[0]].id) if owners else None
        return self._line_entry(line, bad, enc_digest, id_digest(rid))

    def _line_entry(
        self, line: _Line, bad: _Bad, enc_digest: str | None, rid_digest: str | None
    ) -> QuarantineEntry:
        return QuarantineEntry(
            reason=bad.reason,
            scope=QuarantineScope.LINE,
            source_file=line.file.name,
            line_number=line.number,
            resource_type=line.file.resource_type,
            resource_id_digest=rid_digest,
            encounter_id_digest=enc_digest,
            detail=bad.detail,
            raw_line=line.raw,
        )

    # --- pass 3: validate and assemble, one encounter at a time ---------------------------------

    def _finish(self, enc: _Encounter) -> Iterator[CollectedItem]:
        problems = enc.problems
        if not problems:
            built = self._build(enc)
            if isinstance(built, EncounterBundle):
                yield built
                return
            problems = built
        yield from self._quarantine(enc, problems)

    def _build(self, enc: _Encounter) -> EncounterBundle | list[_Problem]:
        encounter = self._load_encounter(enc)
        clinical, bad_lines = self._load_members(enc, encounter.resource)
        directory, unresolved = self._resolve_directory([encounter, *clinical])
        loaded = [encounter, *directory, *clinical]
        # The Encounter's own problems first: they decide the reason shown for it.
        problems = self._check_encounter(encounter.resource, directory)
        problems += bad_lines + unresolved
        problems += self._missing_diagnoses(encounter.resource, clinical)
        patient = fhir.reference(encounter.resource, "subject")
        for item in loaded:
            problems += self._check(item, patient, is_encounter=item is encounter)
        problems += self._duplicates(loaded)
        return problems or self._assemble(enc, loaded)

    def _load_members(
        self, enc: _Encounter, encounter: Resource
    ) -> tuple[list[_Loaded], list[_Problem]]:
        diagnoses = {target.id for target in _diagnoses(encounter)}
        members: list[_Loaded] = []
        problems: list[_Problem] = []
        for position in dict.fromkeys(enc.members):
            item = self._load(position)
            if isinstance(item, _Bad):
                detail = f"{self._where(position)}: {item.detail}"
                problems.append(_Problem(item.reason, detail, position))
            elif _belongs(item.resource, enc.id, diagnoses):
                members.append(item)
        return members, problems

    def _resolve_directory(self, items: list[_Loaded]) -> tuple[list[_Loaded], list[_Problem]]:
        targets = dict.fromkeys(
            target for item in items for target in item.refs if target.resource_type in DIRECTORY
        )
        loaded: list[_Loaded] = []
        problems: list[_Problem] = []
        for target in targets:
            item = self._resolve(target)
            if isinstance(item, _Problem):
                problems.append(item)
            else:
                loaded.append(item)
        return loaded, problems

    def _resolve(self, target: Ref) -> _Loaded | _Problem:
        kind = target.resource_type
        position = self.found[kind].get(target.id)
        if target in self.duplicates:
            return _Problem(R.DUPLICATE_ID, f"two {kind} lines carry an id it references")
        if position is None:
            missing = f"references a {kind} that is not in the export"
            return self.broken.get(target) or _Problem(R.UNRESOLVED_REFERENCE, missing)
        item = self._load(position)
        if isinstance(item, _Bad):
            return _Problem(item.reason, f"{self._where(position)}: {item.detail}", position)
        if item.resource.get("id") != target.id:
            return _Problem(
                R.UNRESOLVED_REFERENCE, f"references a {kind} that is not in the export"
            )
        return item

    def _check_encounter(self, encounter: Resource, directory: list[_Loaded]) -> list[_Problem]:
        problems: list[_Problem] = []
        subject = fhir.reference(encounter, "subject")
        provider = fhir.reference(encounter, "serviceProvider")
        if subject is None or subject.resource_type != "Patient":
            problems.append(_Problem(R.MALFORMED_RESOURCE, "Encounter.subject is not a Patient"))
        if provider is None or provider.resource_type != "Organization":
            problems.append(
                _Problem(R.MALFORMED_RESOURCE, "Encounter.serviceProvider is not an Organization")
            )
        problems += self._check_period(encounter)
        accident = fhir.extension_code(encounter, fhir.EXT_ACCIDENT)
        if accident is not None and accident not in fhir.ACCIDENT_CODES:
            problems.append(_Problem(R.INVALID_CODE, "Encounter accident code is not 0-8"))
        organization = next(
            (d.resource for d in directory if provider and _is(d.resource, provider)), None
        )
        facility = fhir.identifier(organization, fhir.SYS_FACILITY)
        if organization is not None and not _FACILITY_CODE.fullmatch(facility or ""):
            problems.append(
                _Problem(R.INVALID_CODE, "serviceProvider has no 5-digit urn:vn:moh:facility code")
            )
        return problems

    def _check_period(self, encounter: Resource) -> list[_Problem]:
        period = encounter.get("period")
        period = period if isinstance(period, dict) else {}
        start = fhir.parse_datetime(period.get("start"), date_tz=self.window.tz)
        end = fhir.parse_datetime(period.get("end"), date_tz=self.window.tz)
        if start is None:
            return [_Problem(R.INVALID_DATETIME, "Encounter.period.start is missing or invalid")]
        if end is not None and start > end:
            return [_Problem(R.INVALID_DATETIME, "Encounter.period.start is after period.end")]
        return []

    def _missing_diagnoses(self, encounter: Resource, clinical: list[_Loaded]) -> list[_Problem]:
        # Encounter.diagnosis.condition may name a Condition or a Procedure (R4).
        present = {(i.resource.get("resourceType"), i.resource.get("id")) for i in clinical}
        items = encounter.get("diagnosis")
        targets = [fhir.reference(d, "condition") for d in items] if isinstance(items, list) else []
        if any(t is None or tuple(t) not in present for t in targets):
            detail = "Encounter.diagnosis names a Condition or Procedure that is not in the export"
            return [_Problem(R.UNRESOLVED_REFERENCE, detail)]
        return []

    def _check(self, item: _Loaded, patient: Ref | None, *, is_encounter: bool) -> list[_Problem]:
        resource, kind = item.resource, item.resource["resourceType"]
        code_reason = R.INVALID_ICD10 if kind == "Condition" else R.INVALID_CODE
        found: list[tuple[QuarantineReason, str | None]] = [
            (R.INVALID_ID, fhir.id_problem(resource.get("id"))),
            (R.CONTROL_CHARACTERS, _text_problem(item)),
            (code_reason, _code_problem(kind, resource)),
        ]
        if kind in CLINICAL and fhir.reference(resource, "subject") != patient:
            found.append((R.INCONSISTENT_REFERENCE, "subject is not the encounter's patient"))
        line = None if is_encounter else item.line
        return [
            _Problem(reason, f"{self._where(item.line)}: {what}", line)
            for reason, what in found
            if what is not None
        ]

    def _duplicates(self, loaded: list[_Loaded]) -> list[_Problem]:
        seen: set[tuple[object, object]] = set()
        problems: list[_Problem] = []
        for item in loaded:
            key = (item.resource["resourceType"], repr(item.resource.get("id")))
            if key in seen:
                detail = f"{self._where(item.line)}: another line has the same type and id"
                problems.append(_Problem(R.DUPLICATE_ID, detail, item.line))
            seen.add(key)
        return problems

    def _assemble(self, enc: _Encounter, loaded: list[_Loaded]) -> EncounterBundle | list[_Problem]:
        try:
            bundle, canonical = fhir.canonical_pair(
                fhir.collection_bundle(enc.id, [item.resource for item in loaded])
            )
        except (RecursionError, ValueError):
            return [_Problem(R.MALFORMED_RESOURCE, "a resource is nested too deeply to encode")]
        return _encounter_bundle(bundle, canonical, self.window)

    # --- quarantine and reading back --------------------------------------------------------------

    def _quarantine(self, enc: _Encounter, problems: list[_Problem]) -> Iterator[QuarantineEntry]:
        first, others = problems[0], problems[1:]
        detail = first.detail
        if others:
            detail += f" (+{len(others)} more: {', '.join(sorted({p.reason for p in others}))})"
        digest = id_digest(enc.id)
        yield self._entry_at(enc.line, first.reason, QuarantineScope.ENCOUNTER, digest, detail)
        for problem in problems:
            if problem.line is None or problem.emitted or problem.line in self.emitted:
                continue
            self.emitted.add(problem.line)
            scope = QuarantineScope.LINE
            yield self._entry_at(problem.line, problem.reason, scope, digest, problem.detail)

    def _entry_at(
        self,
        position: int,
        reason: QuarantineReason,
        scope: QuarantineScope,
        enc_digest: str | None,
        detail: str,
    ) -> QuarantineEntry:
        index, number, length, offset = _unpack(position)
        file = self.files[index]
        raw = _read_at(self.handles[index], file, offset, length)
        parsed = _decode(raw, file, first=number == 1)
        rid = parsed.resource.get("id") if isinstance(parsed, _Parsed) else _salvaged_id(raw)
        return QuarantineEntry(
            reason=reason,
            scope=scope,
            source_file=file.name,
            line_number=number,
            resource_type=file.resource_type,
            resource_id_digest=id_digest(rid),
            encounter_id_digest=enc_digest,
            detail=detail,
            raw_line=raw,
        )

    def _where(self, position: int) -> str:
        index, number, _, _ = _unpack(position)
        file = self.files[index]
        return f"{file.resource_type} at {file.name}:{number}"

    def _load(self, position: int) -> _Loaded | _Bad:
        index, number, length, offset = _unpack(position)
        file = self.files[index]
        raw = _read_at(self.handles[index], file, offset, length)
        if len(raw) != length:
            raise _changed(file, number)
        parsed = _decode(raw, file, first=number == 1)
        return parsed if isinstance(parsed, _Bad) else _Loaded(position, raw, *parsed)

    def _load_encounter(self, enc: _Encounter) -> _Loaded:
        item = self._load(enc.line)
        if isinstance(item, _Bad) or item.resource.get("id") != enc.id:
            raise _changed(self.files[_unpack(enc.line)[0]], _unpack(enc.line)[1])
        return item


def _changed(file: _File, number: int) -> SourceError:
    # Pass 1 parsed this line; if it no longer does, the file changed under us.
    return SourceError(
        f"{file.name} changed while it was being read (line {number}): "
        "collect again from a complete, unchanging export"
    )


def _read_at(handle: IO[bytes], file: _File, offset: int, length: int) -> bytes:
    chunks, wanted = [], length
    try:
        handle.seek(offset)
        while wanted > 0 and (chunk := handle.read(wanted)):
            chunks.append(chunk)
            wanted -= len(chunk)
    except OSError as e:
        raise SourceError(f"cannot read {file.name} ({e.strerror}): check the disk") from e
    return b"".join(chunks)


def _diagnoses(encounter: Resource) -> list[Ref]:
    """The Conditions named by ``Encounter.diagnosis[].condition``."""
    items = encounter.get("diagnosis")
    targets = [fhir.reference(d, "condition") for d in items] if isinstance(items, list) else []
    return [t for t in targets if t is not None and t.resource_type == "Condition"]


def _belongs(resource: Resource, enc_id: str, diagnoses: set[str]) -> bool:
    """Whether a clinical resource is part of the encounter (pass 2 may over-collect)."""
    target = fhir.reference(resource, "encounter")
    if target is not None and target.resource_type == "Encounter" and target.id == enc_id:
        return True
    return resource.get("resourceType") == "Condition" and resource.get("id") in diagnoses


def _salvaged_id(raw: bytes) -> str | None:
    """The first ``"id":"..."`` of a line that did not parse (normally the resource's own)."""
    match = _SALVAGE_ID.search(raw)
    return match.group(1).decode("utf-8", "replace") if match else None


def _is(resource: Resource, target: Ref) -> bool:
    return resource.get("resourceType") == target.resource_type and resource.get("id") == target.id


def _text_problem(item: _Loaded) -> str | None:
    if not fhir.may_have_bad_text(item.text):  # the cheap check clears almost every line
        return None
    return fhir.text_problem(item.resource, root=item.resource["resourceType"])


def _code_problem(kind: str, resource: Resource) -> str | None:
    if kind == "Condition":
        system, check, name = fhir.SYS_ICD10, fhir.is_icd10, "ICD-10"
    elif kind == "Procedure":
        system, check, name = fhir.SYS_ICD9CM, fhir.is_icd9cm_procedure, "ICD-9-CM"
    else:
        return None
    found = [c.get("code") for c in fhir.codings(resource.get("code")) if c.get("system") == system]
    if not found:
        return f"code has no {name} coding"
    if not all(check(value) for value in found):
        return f"{name} code fails the format/chapter check"
    return None


def _encounter_bundle(bundle: Resource, canonical: bytes, window: Window) -> EncounterBundle:
    """The facts the catalog and the retention policy need, read from a validated bundle."""
    encounter = bundle["entry"][0]["resource"]
    subject = fhir.reference(encounter, "subject")
    patient = fhir.resolve(bundle, subject) or {}
    organization = fhir.resolve(bundle, fhir.reference(encounter, "serviceProvider"))
    period, tz = encounter["period"], window.tz
    klass = encounter.get("class")
    hospitalization = encounter.get("hospitalization")
    return EncounterBundle(
        encounter_id=encounter["id"],
        patient_id=subject.id if subject else "",
        facility_code=fhir.identifier(organization, fhir.SYS_FACILITY) or "",
        admitted_at=_checked(fhir.parse_datetime(period.get("start"), date_tz=tz)),
        discharged_at=_checked(fhir.parse_datetime(period.get("end"), date_tz=tz)),
        encounter_class=_str(klass.get("code")) if isinstance(klass, dict) else None,
        department_code=fhir.code(encounter.get("serviceType"), fhir.SYS_DEPARTMENT),
        discharge_disposition=fhir.code(
            hospitalization.get("dischargeDisposition"), fhir.SYS_DISCHARGE
        )
        if isinstance(hospitalization, dict)
        else None,
        accident_code=fhir.extension_code(encounter, fhir.EXT_ACCIDENT),
        treatment_result=fhir.extension_code(encounter, fhir.EXT_TREATMENT_RESULT),
        icd10_codes=_codes(bundle, "Condition", fhir.SYS_ICD10),
        procedure_codes=_codes(bundle, "Procedure", fhir.SYS_ICD9CM),
        patient_deceased=bool(patient.get("deceasedDateTime"))
        or patient.get("deceasedBoolean") is True,
        record_number=fhir.identifier(encounter, fhir.SYS_HSBA),
        episode_key=fhir.identifier(encounter, fhir.SYS_MA_LK),
        bundle=bundle,
        canonical=canonical,
    )


def _codes(bundle: Resource, kind: str, system: str) -> tuple[str, ...]:
    codes = {fhir.code(r.get("code"), system) for r in fhir.resources_of(bundle, kind)}
    return tuple(sorted(c for c in codes if c is not None))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _checked(moment: datetime | None) -> datetime:
    if moment is None:  # validated before assembly; a None here is a bug, not bad input
        raise SourceError("internal error: a validated Encounter period did not parse")
    return moment
