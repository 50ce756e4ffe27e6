"""A sample FHIR export and one archive run over it: what the end-to-end tests of the write path,
verification, retention and retrieval start from."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from archive.pipeline import ArchiveRun, RunOptions, RunSummary, window_for
from archive.pipeline.classifier import Classifier, RetentionDecision
from archive.pipeline.evidence_wiring import tsa_timestamper
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.sources import EncounterBundle, Window
from archive.store import S3ObjectStore
from infra.sample.generator import SampleSummary, write_sample_export
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier

DAY = date(2026, 11, 22)
DEAD_TSA = "http://127.0.0.1:9/tsa"  # nothing listens: an evidence TSA outage


@dataclass(frozen=True)
class Export:
    path: Path
    summary: SampleSummary
    window: Window
    names: dict[str, str]  # patient id -> name, for PHI scans and pdftotext checks
    secrets: list[str]  # names, CCCD and BHYT numbers


def make_export(
    path: Path, *, encounters: int, seed: int, bad_share: float = 0.05, day: date = DAY
) -> Export:
    """``bad_share`` 0: every encounter archivable (for tests that need only a few records)."""
    summary = write_sample_export(
        path, encounters=encounters, seed=seed, day=day, bad_share=bad_share
    )
    names: dict[str, str] = {}
    phi: list[str] = []
    for line in (path / "Patient.ndjson").read_text(encoding="utf-8").splitlines():
        try:
            patient = json.loads(line)
        except ValueError:
            continue
        name = patient.get("name", [{}])[0].get("text")
        if isinstance(name, str) and isinstance(patient.get("id"), str):
            names[patient["id"]] = name
            phi.append(name)
        phi += [
            i["value"]
            for i in patient.get("identifier", [])
            if i.get("system") in {"urn:vn:cccd", "urn:vn:bhyt"}
        ]
    window = window_for("Asia/Ho_Chi_Minh", since=day, until=None, now=datetime.now(UTC))
    return Export(path, summary, window, names, phi)


@dataclass(frozen=True)
class EndedClassifier:
    """The shipped policy, but every period ended in 2001: a rerun long after records were
    archived (or a policy shortened since)."""

    inner: PolicyClassifier

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        return RetentionDecision(
            self.inner.decide(bundle).class_id, datetime(2001, 1, 1, tzinfo=UTC)
        )

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        return self.inner.extensions(encounter_ids)  # the register's, as the policy's


@dataclass(frozen=True)
class LockedAs:
    """The shipped policy, but the records in ``locks`` get the class and date given there: one
    locked only seconds (its period really ends during the test: an :class:`EndedClassifier`
    alone leaves the catalogued versions' real locks running, and an amendment is never locked
    shorter than its record's catalogued versions), or one under a longer class than its data
    will classify to once corrected."""

    inner: PolicyClassifier
    locks: Mapping[str, RetentionDecision]

    def decide(self, bundle: EncounterBundle) -> RetentionDecision:
        return self.locks.get(bundle.encounter_id) or self.inner.decide(bundle)

    def extensions(self, encounter_ids: Collection[str]) -> Mapping[str, RetentionDecision]:
        return self.inner.extensions(encounter_ids)


def run_once(
    settings: Settings,
    export: Export,
    *,
    batch_size: int = 8,
    evidence_tsa: str | None = None,
    classifier: Classifier | None = None,
) -> RunSummary:
    """One run over ``export``; ``evidence_tsa``: the TSA the evidence stage asks instead of the
    configured one (a dead address makes the run leave its evidence pending); ``classifier``:
    instead of the configured policy."""
    options = RunOptions.create(
        settings,
        window=export.window,
        source=export.path,
        now=datetime.now(UTC),
        batch_size=batch_size,
    )
    classifier = classifier or PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        if evidence_tsa is not None:
            roots = load_trust_roots(SignerConfig.from_settings(settings).tsa_trust_roots)
            run.evidence_timestamper = tsa_timestamper(
                evidence_tsa, RetryPolicy(attempts=1), roots=roots
            )
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()


def record_versions(store: S3ObjectStore) -> Iterator[tuple[str, str]]:
    for v in store.list_versions("records/"):
        if not v.is_delete_marker:
            yield v.key, v.version_id


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment of an `emr-archive` subprocess on ``settings`` (its own bucket, catalog
    and Prefect home; nothing of the developer's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env.update(
        {
            "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
            "EMR_ARCHIVE_S3__BUCKET": settings.s3.bucket,
            "EMR_ARCHIVE_CATALOG__CATALOG_DIR": str(settings.catalog_dir),
            "EMR_ARCHIVE_ARCHIVE__WORKERS": "2",
            "EMR_ARCHIVE_ARCHIVE__SOURCE_ROOTS": json.dumps(
                [str(r) for r in settings.archive.source_roots]
            ),
            "PREFECT_HOME": str(settings.data_dir / "prefect-test"),
            # The temporary Prefect server's 20 s start-up is too short on a loaded test box.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        }
    )
    for name, value in settings.stack.model_dump().items():
        env[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    return env
