"""Which files of a Bulk Data export to read, in which order, and how many lines each must hold.

Takes the export directory and the window; returns its files as :class:`ExportFile` values in
the collector's order (Encounter first: pass 1 must know the selected encounters before pass 2
reads the rest). The manifest is trusted only as far as it can be checked: it must be taken after
the window closed, may only name plain file names inside the directory, and every file it lists
must be there. Anything else makes the whole export unusable (:class:`SourceError`), because
collecting from it would silently miss encounters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from archive.core.errors import SourceError
from archive.sources import fhir
from archive.sources.model import Window

CLINICAL: Final = ("Condition", "Procedure", "MedicationRequest", "Observation")
DIRECTORY: Final = ("Patient", "Organization", "Practitioner")
TYPES: Final = ("Encounter", *CLINICAL, *DIRECTORY)
MANIFEST_NAME: Final = "manifest.json"
_SAFE_FILE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.ndjson")


@dataclass(frozen=True, slots=True)
class ExportFile:
    index: int  # its place in the collector's order; packed into every line position
    name: str
    path: Path
    resource_type: str
    expected_count: int | None  # from the manifest's "count", when given


def discover(export_dir: Path, window: Window) -> list[ExportFile]:
    """The files to read, from ``manifest.json`` or, without one, the ``<Type>.ndjson`` present."""
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
    files = [ExportFile(i, n, export_dir / n, t, c) for i, (t, n, c) in enumerate(listed)]
    _check_files(export_dir, files)
    return files


def _check_files(export_dir: Path, files: list[ExportFile]) -> None:
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
