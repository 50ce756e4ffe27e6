"""Store: sealed bytes in, a COMPLIANCE-locked object version out.

:class:`ObjectStore` is the interface, :class:`S3ObjectStore` the adapter (AWS S3, Ceph RGW,
MinIO, SeaweedFS). ``naming`` derives object keys without PHI; ``deposit`` stores once with a
conditional create and adopts what an interrupted run already stored; ``sealed`` seals metadata
(catalog copies, audit and register segments) before it reaches the bucket.
"""

from archive.store.base import (
    COMPLIANCE,
    ClaimStore,
    MetaReader,
    ObjectHead,
    ObjectLock,
    ObjectRead,
    ObjectStore,
    ObjectVersion,
    PutResult,
    sha256_hex,
)
from archive.store.deposit import Deposit, adopt, deposit, withdraw
from archive.store.naming import (
    EVIDENCE_PREFIX,
    LEASES_PREFIX,
    RECORDS_PREFIX,
    UNREPLICATED_PREFIXES,
    evidence_key,
    file_key,
    quarantine_key,
    record_key,
)
from archive.store.rehomed import REHOMED_PREFIX
from archive.store.rehomed_store import Catalogued, RehomedStore
from archive.store.replica import ReplicatedStore, open_primary, open_sites, storage_sites
from archive.store.s3 import S3ObjectStore
from archive.store.s3_client import DevCredentials, S3Credentials, S3Role, Site, make_client
from archive.store.sealed import SealedStore

__all__ = [
    "COMPLIANCE",
    "EVIDENCE_PREFIX",
    "LEASES_PREFIX",
    "RECORDS_PREFIX",
    "REHOMED_PREFIX",
    "UNREPLICATED_PREFIXES",
    "Catalogued",
    "ClaimStore",
    "Deposit",
    "DevCredentials",
    "MetaReader",
    "ObjectHead",
    "ObjectLock",
    "ObjectRead",
    "ObjectStore",
    "ObjectVersion",
    "PutResult",
    "RehomedStore",
    "ReplicatedStore",
    "S3Credentials",
    "S3ObjectStore",
    "S3Role",
    "SealedStore",
    "Site",
    "adopt",
    "deposit",
    "evidence_key",
    "file_key",
    "make_client",
    "open_primary",
    "open_sites",
    "quarantine_key",
    "record_key",
    "sha256_hex",
    "storage_sites",
    "withdraw",
]
