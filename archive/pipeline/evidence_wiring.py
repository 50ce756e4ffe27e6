"""What the nightly run builds its evidence stage from: the signer's TSA client and TSA roots,
the run's store and keyring, and the documents (catalog rows and manifests) it covers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

from asn1crypto import cms

from archive.catalog import Catalog, CatalogRow, manifest_lock, manifest_name
from archive.core.settings import Settings
from archive.evidence import TsaTrust
from archive.pipeline.evidence_stage import ALGORITHM, EvidenceStage, Step, Timestamper
from archive.pipeline.evidence_state import MANIFESTS, EvidenceState, Member
from archive.seal import KeyProvider
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.tsa import TsaClient
from archive.store import ObjectStore, SealedStore, evidence_key


def tsa_timestamper(url: str, retry: RetryPolicy) -> Timestamper:
    """The signer's RFC 3161 client (same retries and breaker), for one digest at a time."""

    def stamp(digest: bytes) -> cms.ContentInfo:
        async def once() -> cms.ContentInfo:
            client = TsaClient(url, retry)
            try:
                return await client.timestamp(digest, ALGORITHM)
            finally:
                await client.aclose()

        return asyncio.run(once())

    return stamp


def open_stage(
    settings: Settings,
    store: ObjectStore,
    keys: KeyProvider,
    *,
    timestamper: Timestamper | None = None,
    on_step: Step | None = None,
) -> EvidenceStage:
    """The stage on the run's store (sealed under its keyring), the signer's TSA and TSA roots;
    local state and the record cache under ``<data_dir>/evidence/<bucket>`` (state mirrors one
    bucket's, so two buckets never share it)."""
    sealed = SealedStore.for_settings(settings, store, keys=keys)
    base = local_dir(settings)
    roots = load_trust_roots(
        SignerConfig.from_settings(settings).tsa_trust_roots,
        setting="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS",
    )
    return EvidenceStage(
        EvidenceState(base, sealed),
        sealed,
        timestamper=timestamper or tsa_timestamper(settings.tsa_url, RetryPolicy()),
        check=TsaTrust(roots),
        cache=base / "cache",
        on_step=on_step,
    )


def local_dir(settings: Settings) -> Path:
    return settings.data_dir / "evidence" / settings.s3.bucket


def record_members(rows: Iterable[CatalogRow]) -> list[Member]:
    """Each catalogued record: its signed PDF's SHA-256 (``pdf_sha256``: the plaintext PDF, the
    document an inspector receives), its evidence key and its retain-until."""
    return [
        Member(
            evidence_key(object_key=r.object_key, version_id=r.version_id),
            r.pdf_sha256,
            r.retain_until,
        )
        for r in rows
    ]


def manifest_members(catalog: Catalog, settings: Settings) -> Callable[[str], list[Member]]:
    """A run's catalog manifest, as a document of its tree (known only after the append)."""

    def of(run_id: str) -> list[Member]:
        return [
            Member(
                f"{MANIFESTS}{manifest_name(m.seq)}.ers",
                m.sha256,
                manifest_lock(settings, m.created_at),
            )
            for m in catalog.manifests
            if m.run_id == run_id
        ]

    return of
