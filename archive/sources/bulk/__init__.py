"""The FHIR Bulk Data (``$export``) source: finished encounters from an NDJSON export directory.

Takes the export directory and a :class:`~archive.sources.Window`; yields an
:class:`~archive.sources.EncounterBundle` per selected encounter that can be archived intact and
a :class:`~archive.sources.QuarantineEntry` for everything else. Three streaming passes keep
memory at O(index of the selected encounters), not O(export):

1. :mod:`~archive.sources.bulk.index` selects the finished encounters of the window
   (``Encounter`` files) and
2. indexes the positions of the lines they need in the other files, mostly without parsing them
   (:mod:`~archive.sources.bulk.scan`);
3. :mod:`~archive.sources.bulk.build` reads each encounter's lines back by position
   (:mod:`~archive.sources.bulk.ndjson`), checks them (:mod:`~archive.sources.bulk.checks`) and
   assembles the bundle (:mod:`~archive.sources.bulk.assemble`), in encounter id order.

Nothing bad raises: a bad line becomes a ``LINE`` quarantine entry, and an encounter that cannot be
archived intact (a bad line of its own, an unresolved reference, an invalid id/code/text...) an
``ENCOUNTER`` entry. Only an unusable export raises :class:`SourceError`
(:mod:`~archive.sources.bulk.manifest`). A line that does not parse and names no encounter (or
none the scan can see) is quarantined on its own.
"""

from archive.sources.bulk.collect import DEFAULT_MAX_LINE_BYTES, collect
from archive.sources.bulk.manifest import MANIFEST_NAME
from archive.sources.bulk.reread import IndexedExport
from archive.sources.model import Window

__all__ = ["DEFAULT_MAX_LINE_BYTES", "MANIFEST_NAME", "IndexedExport", "Window", "collect"]
