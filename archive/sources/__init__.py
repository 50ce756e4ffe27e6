"""Sources: where encounters come from.

Takes a source directory (a FHIR Bulk Data export, :mod:`archive.sources.bulk`, or a folder of
QĐ 130 XML files, :mod:`archive.sources.qd130`; :func:`collect_source` chooses) and a
:class:`Window` of discharge times; yields :data:`CollectedItem` values: an
:class:`EncounterBundle` ready to render, or a :class:`QuarantineEntry` for anything it could not
use, with its reason. Bad records never raise;
only an unusable export as a whole raises :class:`~archive.core.errors.SourceError`.
"""

from archive.core.errors import SourceError
from archive.core.timezones import DEFAULT_TZ, zone
from archive.sources.bulk import MANIFEST_NAME, IndexedExport, collect
from archive.sources.choose import SourceFormat, collect_source, page_model, source_kind
from archive.sources.fhir import Ref, canonical_json, parse_datetime
from archive.sources.model import CollectedItem, EncounterBundle, Window
from archive.sources.quarantine import IdDigest, QuarantineEntry, QuarantineReason, QuarantineScope
from archive.sources.validation import id_problem

__all__ = [
    "DEFAULT_TZ",
    "MANIFEST_NAME",
    "CollectedItem",
    "EncounterBundle",
    "IdDigest",
    "IndexedExport",
    "QuarantineEntry",
    "QuarantineReason",
    "QuarantineScope",
    "Ref",
    "SourceError",
    "SourceFormat",
    "Window",
    "canonical_json",
    "collect",
    "collect_source",
    "id_problem",
    "page_model",
    "parse_datetime",
    "source_kind",
    "zone",
]
