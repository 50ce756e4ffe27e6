"""A chain's locked bucket copies, listed once and compared with the local segments both ways.

Every segment is locked (COMPLIANCE) under a name carrying its keyed digest
(:func:`archive.audit.seal.object_key`), so the listing of the chain's prefix is an index nobody
can shorten or edit: a local segment that is missing there, or differs, or a copy the local log
lacks (a segment deleted and HEAD replayed) shows without reading an object. Copies named by
releases before keyed digests carry no digest; :func:`compare` opens those only when asked to
(``audit verify``), as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from archive.audit.seal import OBJECT_NAME
from archive.core.errors import AuditChainError, SealError
from archive.store import ObjectStore


@dataclass(frozen=True, slots=True)
class Copy:
    """One locked version under the chain's prefix."""

    key: str
    version_id: str
    digest: str | None  # None: named before keyed digests, compared by content


def list_copies(store: ObjectStore, prefix: str) -> dict[str, list[Copy]]:
    """Locked copies by local segment name (``0000000001.jsonl``): one LIST of the prefix."""
    copies: dict[str, list[Copy]] = {}
    for version in store.list_versions(prefix):
        match = OBJECT_NAME.fullmatch(version.key.removeprefix(prefix))
        if version.is_delete_marker or match is None:
            continue
        name = f"{match[1]}.jsonl"
        copies.setdefault(name, []).append(Copy(version.key, version.version_id, match[2]))
    return copies


def compare(
    copies: dict[str, list[Copy]],
    digests: Mapping[str, str],
    *,
    opened: tuple[ObjectStore, Mapping[str, bytes]] | None = None,
) -> list[str]:
    """The local segments the bucket lacks, oldest first, after checking that every copy in the
    bucket is a local segment with the same keyed digest (AuditChainError otherwise).

    ``digests`` are the local segments' (:func:`archive.audit.seal.segment_digest`), in order.
    Copies without a digest in their name are opened and compared with the local bytes when
    ``opened`` (the store and every local segment's bytes) is given, else taken by name."""
    for name in sorted(copies):
        if name not in digests:
            raise AuditChainError(
                f"the bucket holds {copies[name][0].key}, which the local log lacks: the local "
                "log was cut short or rolled back; restore it from the locked bucket copies"
            )
        for copy in copies[name]:
            if copy.digest is None:
                if opened is not None:
                    _compare_content(opened[0], copy, opened[1][name])
            elif copy.digest != digests[name]:
                raise AuditChainError(
                    f"local {name} differs from its locked copy {copy.key}: the local segment "
                    "was rewritten (or that copy was not written by this archive)"
                )
    return [name for name in digests if name not in copies]


def _compare_content(store: ObjectStore, copy: Copy, data: bytes) -> None:
    try:
        held = store.get(copy.key, version_id=copy.version_id)
    except SealError as e:
        raise AuditChainError(
            f"the locked copy {copy.key} does not open under this keyring "
            f"({type(e).__name__}): it is damaged or was not written by this archive"
        ) from e
    if held != data:
        raise AuditChainError(f"local {copy.key.rsplit('/', 1)[-1]} differs from its locked copy")
