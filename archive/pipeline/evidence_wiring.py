"""What the nightly run builds its evidence stage from: the signer's TSA client and TSA roots,
the run's store and keyring, and the documents (catalog rows and manifests) it covers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms, x509

from archive.audit import AuditEvent, AuditLog
from archive.catalog import (
    MANIFESTS_DIR,
    Catalog,
    CatalogRow,
    manifest_lock,
    manifest_name,
    table_to_rows,
)
from archive.catalog.digests import catalogued_digests
from archive.core.settings import Settings
from archive.evidence import TsaTrust, with_validation_data
from archive.pipeline.evidence_rehash import (
    Document,
    FanOut,
    HashTreeRenewal,
    RehashOutcome,
    Stored,
)
from archive.pipeline.evidence_rehash import Step as RehashStep
from archive.pipeline.evidence_renewal import EvidenceRenewal, RenewalOutcome, RenewalTimestamper
from archive.pipeline.evidence_stage import ALGORITHM, EvidenceStage, Step, Timestamper
from archive.pipeline.evidence_state import MANIFESTS, EvidenceState, Member
from archive.seal import KeyProvider, ObjectIdentity, open_keys, unseal
from archive.sign import RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.certificates import TransientError, validate_cert
from archive.sign.revocation import aclose_context, online_context
from archive.sign.tsa import TsaClient, token_certs
from archive.store import ObjectStore, SealedStore, evidence_key, open_sites


def tsa_timestamper(
    url: str,
    retry: RetryPolicy,
    *,
    roots: Sequence[x509.Certificate],
    ocsp_url_override: str | None = None,
    algorithm: str = ALGORITHM,
) -> Timestamper:
    """The signer's RFC 3161 client (same retries and breaker), for one digest at a time. The
    token comes back carrying the OCSP responses and CRLs of its TSA's certificate path (fetched
    as the signer fetches them for its document timestamps): without them no validator can tell
    offline, years later, that the TSA was not revoked when it stamped (EU DSS leaves such an
    evidence record INDETERMINATE), and a renewal must cover them while they can still be had."""

    def stamp(digest: bytes) -> cms.ContentInfo:
        async def once() -> cms.ContentInfo:
            client = TsaClient(url, retry)
            try:
                token = await client.timestamp(digest, algorithm)
            finally:
                await client.aclose()
            tsa_cert, others = token_certs(token)
            context = online_context(
                trust_roots=roots,
                other_certs=others,
                ocsp_url_override=ocsp_url_override,
                timeout=retry.request_timeout_s,
            )
            try:
                await validate_cert(tsa_cert, others, context, anchors=roots, time_stamping=True)
            except TransientError as e:
                raise e.final from e
            finally:
                await aclose_context(context)
            return with_validation_data(
                token,
                crls=[c.dump() for c in context.crls],
                ocsps=[o.dump() for o in context.ocsps],
            )

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
    config = SignerConfig.from_settings(settings)
    roots = load_trust_roots(config.tsa_trust_roots, setting="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS")
    stamp = timestamper or tsa_timestamper(
        settings.tsa_url, RetryPolicy(), roots=roots, ocsp_url_override=config.ocsp_url_override
    )
    return EvidenceStage(
        EvidenceState(base, sealed),
        sealed,
        timestamper=stamp,
        check=TsaTrust(roots),
        cache=base / "cache",
        on_step=on_step,
    )


def renewal_tsa(settings: Settings) -> tuple[RenewalTimestamper, TsaTrust]:
    """The renewal TSA (``evidence.tsa_url``, else the signer's) for a digest in any algorithm,
    and the check of its tokens against the TSA trust roots verification uses."""
    config = SignerConfig.from_settings(settings)
    roots = load_trust_roots(config.tsa_trust_roots, setting="EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS")
    url = settings.evidence.tsa_url or settings.tsa_url

    def stamp(digest: bytes, algorithm: str) -> cms.ContentInfo:
        client = tsa_timestamper(
            url,
            RetryPolicy(),
            roots=roots,
            ocsp_url_override=config.ocsp_url_override,
            algorithm=algorithm,
        )
        return client(digest)

    return stamp, TsaTrust(roots)


def open_renewal(
    settings: Settings,
    store: ObjectStore,
    keys: KeyProvider,
    *,
    timestamper: RenewalTimestamper | None = None,
    on_step: Step | None = None,
) -> EvidenceRenewal:
    """The renewal job on the store the nightly run writes to (both sites with a replica)."""
    stamp, check = renewal_tsa(settings)
    return EvidenceRenewal(
        SealedStore.for_settings(settings, store, keys=keys),
        settings=settings.evidence,
        timestamper=timestamper or stamp,
        check=check,
        on_step=on_step,
    )


def renew_evidence(
    settings: Settings, *, now: datetime, plan_only: bool = False, on_step: Step | None = None
) -> RenewalOutcome:
    """What ``emr-archive evidence renew`` and the monthly ``evidence-renewal`` flow run: with
    ``plan_only`` the plan alone (no TSA call, no write, no audit event), else the renewal on
    the nightly run's store (both sites with a replica), audited."""
    store = open_sites(settings, catalogued=catalogued_digests(settings.catalog_dir))
    job = open_renewal(settings, store, open_keys(settings), on_step=on_step)
    if plan_only:
        return RenewalOutcome(plan=job.plan(now))
    out = job.renew(now)
    detail: dict[str, str | int] = {
        "kind": "timestamp",
        "timestamps": out.timestamps,
        "tokens": out.tokens,
        "trees": out.trees,
        "records": out.records,
        "objects_written": out.written,
        "resumed": out.resumed,
        "due": len(out.plan.due),
        **{f"due.{code}": n for code, n in out.plan.reasons().items()},
    }
    audit_renewal(settings, store, out.failures(), detail)
    return out


def rehash_evidence(
    settings: Settings,
    *,
    algorithm: str,
    now: datetime,
    plan_only: bool = False,
    on_step: RehashStep | None = None,
    fan_out: FanOut | None = None,
) -> RehashOutcome:
    """Hash-tree renewal of every catalogued record's and manifest's evidence into a new chain
    in ``algorithm`` (``emr-archive evidence renew --hash``): each PDF read from the store and
    opened, each manifest from the catalog directory, all checked against the catalog first.
    ``fan_out``: the records' reading and hashing done elsewhere (the ``evidence-rehash`` flow
    on a Dask cluster); the manifests, the TSA calls and every write stay here."""
    store = open_sites(settings, catalogued=catalogued_digests(settings.catalog_dir))
    keys = open_keys(settings)
    catalog = Catalog.open(settings.catalog_dir)

    def pdf(row: CatalogRow) -> Callable[[], bytes]:
        identity = ObjectIdentity(row.bucket, row.object_key, row.encounter_id)
        return lambda: unseal(
            store.get(row.object_key, version_id=row.version_id),
            identity=identity,
            keys=keys,
            settings=settings.seal,
        )

    rows = table_to_rows(catalog.rows())
    documents = [
        Document(
            m.key,
            m.sha256,
            m.retain_until,
            pdf(row),
            Stored(row.bucket, row.object_key, row.version_id, row.encounter_id),
        )
        for row, m in zip(rows, record_members(rows), strict=True)
    ]
    manifests = manifest_members(catalog, settings)
    for info in catalog.manifests:
        path = settings.catalog_dir / MANIFESTS_DIR / info.name
        documents += [
            Document(m.key, m.sha256, m.retain_until, path.read_bytes)
            for m in manifests(info.run_id)
            if m.sha256 == info.sha256
        ]
    stamp, check = renewal_tsa(settings)
    job = HashTreeRenewal(
        SealedStore.for_settings(settings, store, keys=keys),
        timestamper=stamp,
        check=check,
        on_step=on_step,
        fan_out=fan_out,
    )
    if plan_only:
        return job.plan(documents, algorithm)
    out = job.renew(documents, algorithm, now)
    detail: dict[str, str | int] = {
        "kind": "hash-tree",
        "algorithm": algorithm,
        "timestamps": out.timestamps,
        "documents": out.documents,
        "renewed": out.renewed,
        "already": out.already,
        "objects_written": out.written,
        "resumed": out.resumed,
    }
    audit_renewal(settings, store, out.failures(), detail)
    return out


def audit_renewal(
    settings: Settings, store: ObjectStore, failed: dict[str, int], detail: dict[str, str | int]
) -> None:
    """One ``evidence.renew`` event: counts and reason codes, never a record or a patient."""
    log = AuditLog.for_settings(settings, store)
    log.append(
        AuditEvent(
            actor="evidence-renewal",
            role="system",
            action="evidence.renew",
            recorded=datetime.now(UTC),
            outcome="failure" if failed else "success",
            reason=",".join(sorted(failed)) or None,
            detail=detail,
        )
    )
    log.flush()


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
