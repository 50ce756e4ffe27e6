"""Sort the encounters a catalog already holds: unchanged, amended, or past their retention.

An encounter whose data differs from its newest archived version is archived again as the next
revision, locked for its class. But when that class's period has already ended, the new version
cannot be locked at all (S3 Object Lock refuses a retain-until in the past), and it should not
be: a record past its period is the facility's disposition decision (Archive Law 33/2024 art. 16,
Decree 113/2025 art. 20), not an amendment. Such a change is quarantined ``retention-ended`` with
what a records officer should do, once per run and content-addressed (a rerun stores nothing new),
instead of failing in the worker on every run. The archived versions are left as they are.

A record the records department chose to keep longer (a retention upgrade: an extension in the
retention register) is judged by that extension instead, when it runs longer than the class: an
amendment is archived and locked until the extension, and quarantined only once the extension
has ended too. The register is asked once per batch, for the changed records only.

Likewise a record whose earlier version was catalogued under a longer class than its corrected
data now gives (a diagnosis or a death entered in error, say): the record's retention is the
longest any of its versions required (a dossier takes its longest class, Archive Law 33/2024 art.
15; a class never falls on new data, as in retention/upgrades.py), and only a disposition
decision ends it, not a correction. So an amendment takes the class and date of the version
catalogued with the longest lock when that runs longer than its own class (and than any
extension), read from the catalog once per batch for the changed records only.

The same holds for a record the catalog has never seen whose period ended before it reached the
archive (a backfill over years long past): :func:`ended_before_archiving` quarantines it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from archive.core.errors import ArchiveError
from archive.intake import SCANNED
from archive.pipeline.classifier import Classifier, RetentionDecision, decide
from archive.sources import EncounterBundle, QuarantineEntry, QuarantineReason, QuarantineScope

# No retention class is shorter than this (TT 33/2025's shortest is 10 years): a record
# discharged more recently cannot be past its period, so nightly runs never classify here.
_SHORTEST_PERIOD = timedelta(days=365)


@dataclass(slots=True)
class Known:
    """What became of a run's catalogued encounters."""

    changed: list[EncounterBundle] = field(default_factory=list)  # next revisions, to archive
    unchanged: int = 0  # the newest archived version holds the same data
    amended: int = 0  # of ``changed``, those the catalog holds (always all, in a run)
    ended: list[QuarantineEntry] = field(default_factory=list)  # changes past their period


Locks = Callable[[Collection[str]], Mapping[str, RetentionDecision]]


def sort_known(
    known: Sequence[EncounterBundle],
    versions: Mapping[str, Sequence[str]],
    classifier: Classifier,
    now: datetime,
    source_file: str,
    catalogued_locks: Locks,
) -> Known:
    """``source_file``: what the quarantine index names as the source (the scan manifest).
    ``versions``: each encounter's catalogued ``data_sha256``, oldest first (the catalog's
    :meth:`data_versions`); ``catalogued_locks(ids)``: of these, each one's longest catalogued
    class and lock date (the look-up's :meth:`longest_locks`). Unchanged encounters are compared
    before any retention decision, so an archived record whose period ended since is still
    "already archived". A record the classifier cannot judge is left to the worker, which fails
    it with its reason."""
    out = Known()
    changed = [b for b in known if _changed(b, versions)]
    amended = [b.encounter_id for b in changed if versions.get(b.encounter_id)]
    extended = classifier.extensions(amended) if amended else {}
    locked = catalogued_locks(amended) if amended else {}
    out.unchanged = len(known) - len(changed)
    for bundle in changed:
        archived = versions.get(bundle.encounter_id, ())
        # only ever an amended record's: the longer of its extension and earlier versions' lock
        kept = _longest(extended.get(bundle.encounter_id), locked.get(bundle.encounter_id))
        bundle = dataclasses.replace(
            bundle,
            revision=len(archived) + 1,
            extended_retention=None if kept is None else (kept.class_id, kept.retain_until),
        )
        if archived and (entry := _ended(bundle, classifier, now, source_file)) is not None:
            out.ended.append(entry)
            continue
        out.changed.append(bundle)
        out.amended += bool(archived)
    return out


def _longest(*decisions: RetentionDecision | None) -> RetentionDecision | None:
    found = [d for d in decisions if d is not None]
    return max(found, key=lambda d: d.retain_until) if found else None


def _changed(bundle: EncounterBundle, versions: Mapping[str, Sequence[str]]) -> bool:
    archived = versions.get(bundle.encounter_id, ())
    return not archived or archived[-1] != bundle.sha256


def ended_before_archiving(
    bundle: EncounterBundle, classifier: Classifier, now: datetime
) -> QuarantineEntry | None:
    """A new record (not in the catalog) whose retention period ended before this run: its
    lock date would be in the past, which Object Lock refuses, so the worker failed it with
    ``store.error`` on every run. Paper records are judged when their manifest is read
    (:mod:`archive.intake.collect`); a record the classifier cannot judge goes to the worker."""
    if bundle.source_kind == SCANNED or now - bundle.discharged_at < _SHORTEST_PERIOD:
        return None
    class_id = _ended_class(bundle, classifier, now)
    if class_id is None:
        return None
    detail = (
        f"a record whose retention period (class {class_id}) ended before it reached "
        "the archive: not archived, since it could not be locked. The facility decides: "
        "dispose of the source record under its own procedure, or, if it keeps such records, "
        "give them a longer class in the retention policy file and run again"
    )
    return _entry(bundle, "retention-check", detail)


def _ended_class(bundle: EncounterBundle, classifier: Classifier, now: datetime) -> str | None:
    """The class whose period ended by ``now`` (an extension the bundle carries counts when
    longer); None while it runs, or when the classifier cannot judge the record (the worker
    then fails it with its reason)."""
    try:
        decision = decide(classifier, bundle)
    except (ArchiveError, ValueError):
        return None
    return decision.class_id if decision.retain_until <= now else None


def _ended(
    bundle: EncounterBundle, classifier: Classifier, now: datetime, source_file: str
) -> QuarantineEntry | None:
    class_id = _ended_class(bundle, classifier, now)
    if class_id is None:
        return None
    keep = (
        "state a longer retention_class in the scan manifest"
        if bundle.source_kind == SCANNED
        else "the amendment needs a longer retention class"
    )
    detail = (
        f"an amendment of an archived record whose retention period (class "
        f"{class_id}) has ended: not archived, the archived version is unchanged. A "
        "record past its period needs a disposition decision, not an amendment: put it in the "
        f"disposition procedure (emr-archive disposition propose); if the facility decided to "
        f"keep it, {keep}"
    )
    return _entry(bundle, source_file, detail)


def _entry(bundle: EncounterBundle, source_file: str, detail: str) -> QuarantineEntry:
    return QuarantineEntry(
        reason=QuarantineReason.RETENTION_ENDED,
        scope=QuarantineScope.ENCOUNTER,
        source_file=source_file,
        line_number=0,
        resource_type=None,
        resource_id=None,
        encounter_id=bundle.encounter_id,
        detail=detail,
        raw_line=bundle.canonical,
    )
