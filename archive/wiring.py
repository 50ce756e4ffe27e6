"""Build the archive's parts from settings: the one place that picks implementations.

Library code takes its parts (store, key provider, catalog) as arguments; the CLI, the flows and
the tests call these factories, so switching to AWS KMS or another store touches only this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.catalog import Catalog
from archive.catalog.digests import catalogued_digests
from archive.core.settings import Settings
from archive.seal import ArchiveKeys, init_keys, open_keys
from archive.store import ObjectStore, S3Role, SealedStore, open_primary, open_sites

if TYPE_CHECKING:
    from asn1crypto import x509

    from archive.sign import TrustPolicy


def open_keyring(settings: Settings, *, create: bool = False) -> ArchiveKeys:
    """The configured key store (local keyring, or OpenBao/Vault transit)."""
    return init_keys(settings)[0] if create else open_keys(settings)


def open_store(
    settings: Settings, *, read_only: bool = False, role: S3Role = "admin"
) -> ObjectStore:
    """The configured bucket, as ``role`` (the embedded stack's identities; configured
    credentials always win); the admin writer first checks it has Object Lock and versioning.

    A read-only or portal identity may not read the bucket's lock configuration (SeaweedFS and
    AWS treat it as an admin call). Reading needs no such guarantee, and the portal's only writes
    are locked PUTs, which a bucket without Object Lock refuses outright.

    Writers get both sites when a replica is configured (:func:`archive.store.open_sites`);
    readers read the primary. Either way a record a primary repair restored is read under its
    catalogued version id, checked against this machine's catalog (:mod:`archive.catalog.digests`).
    """
    catalogued = catalogued_digests(settings.catalog_dir)
    if read_only:
        return open_primary(settings, read_only=True, role=role, catalogued=catalogued)
    store = open_sites(settings, role=role, catalogued=catalogued)
    if role == "admin":
        store.ensure_compliant()
    return store


def open_meta_store(settings: Settings, *, read_only: bool = False) -> SealedStore:
    """The bucket for the archive's own metadata (catalog copies, logs): sealed, never clear."""
    store = open_store(settings, read_only=read_only)
    return SealedStore.for_settings(settings, store, keys=open_keyring(settings))


def open_catalog(settings: Settings, *, create: bool = False) -> Catalog:
    return Catalog.open(settings.catalog_dir, create=create)


def trust_policy(
    settings: Settings, *, catalog: Catalog | None = None, signer: x509.Certificate | None = None
) -> TrustPolicy:
    """Whom validation believes: the configured signer (``signer`` if the caller holds it), the
    pinned past keys, and every signer of ``catalog``, or of the catalog on this machine if
    there is one (an inspector's machine has none: the settings alone decide there)."""
    # Imported here: pyHanko costs every CLI command a quarter of a second, and most never validate.
    from archive.sign import SignerConfig, TrustPolicy

    if catalog is None and settings.catalog_dir.is_dir():
        catalog = open_catalog(settings)
    known = catalog.signer_fingerprints() if catalog is not None else set()
    config = SignerConfig.from_settings(settings)
    return TrustPolicy.load(config, signer=signer, known_signers=known)
