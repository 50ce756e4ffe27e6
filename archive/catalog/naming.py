"""Where manifests live, by name and by bucket key, and what to tell an operator when one is bad.

Manifests are named by sequence number alone (``0000000001.parquet``), locally and in the bucket,
so no key or file name ever carries PHI. Which advice an error gives depends on where the bad copy
is: a damaged local manifest is rebuilt from the bucket, a damaged bucket copy is the authority
itself and must be investigated, never overwritten.
"""

from __future__ import annotations

import re
from typing import Final

CATALOG_FORMAT_VERSION: Final = 1
GENESIS_SHA256: Final = "0" * 64
# Bucket copies are sealed (archive.store.SealedStore): they name encounters, pseudonyms and
# classes. Releases before sealing wrote plaintext copies under LEGACY_BUCKET_PREFIX; those stay
# locked (COMPLIANCE) and are ignored: every manifest is uploaded again, sealed, under
# BUCKET_PREFIX.
BUCKET_PREFIX: Final = "catalog/sealed/v1/manifests/"
LEGACY_BUCKET_PREFIX: Final = "catalog/manifests/"
REBUILD_HINT: Final = (
    "restore the catalog from the locked bucket copies with Catalog.rebuild(new_dir, store)"
)
BUCKET_HINT: Final = (
    "the locked bucket copies are the authority and are damaged or incomplete: keep the local "
    "catalog, stop appending and investigate the storage (replicas, audit log)"
)

_MANIFEST_NAME = re.compile(r"(\d{10})\.parquet")


def hint_for(name: str) -> str:
    """What to do about a bad manifest, local (``manifests/...``) or in the bucket."""
    return BUCKET_HINT if name.startswith(BUCKET_PREFIX) else REBUILD_HINT


def manifest_name(seq: int) -> str:
    return f"{seq:010d}.parquet"


def manifest_key(seq: int) -> str:
    """The bucket key of manifest ``seq``: a sequence number, never PHI."""
    return BUCKET_PREFIX + manifest_name(seq)


def parse_manifest_name(name: str) -> int | None:
    match = _MANIFEST_NAME.fullmatch(name)
    return int(match[1]) if match else None
