"""What the record checks look at: one catalogued record's object, fetched once and shared.

Each stage (GET, HEAD, unseal) runs at most once per record, whichever check asks first, and its
outcome (value or exception) is kept, so five checks cost one GET and one unseal. The GET answers
the version's checksum, lock and hold too (:class:`archive.store.MetaReader`), hashed as it
streams in: a HEAD is sent only when the store's GET left one out or failed (a version that is
listed but cannot be read is still reported present and unreadable, as before). A check that
needs a stage an earlier check found broken gets :class:`NotReached`: it is reported as
indeterminate ``<check>.not_reached`` and the record's bottom line names the real failure.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from pyhanko.pdf_utils.reader import PdfFileReader

from archive.catalog import CatalogRow
from archive.core.errors import ObjectNotFoundError, RehomedError, StoreUnavailableError
from archive.core.settings import SealSettings
from archive.evidence import WeakAlgorithms
from archive.pipeline.evidence_current import Renewal
from archive.seal import KeyProvider, ObjectIdentity, unseal
from archive.sign import TrustPolicy
from archive.store import (
    MetaReader,
    ObjectHead,
    ObjectRead,
    ObjectStore,
    RehomedStore,
    sha256_hex,
)
from verification.config import HoldSource, VerificationSettings
from verification.document import shared_reader

_T = TypeVar("_T")


class NotReached(Exception):  # noqa: N818 - a signal between evidence and checks, not an error
    """A stage this check depends on failed; the failure is reported by the check that owns it."""


@dataclass(frozen=True, slots=True)
class Environment:
    """Everything a worker loads once and every record shares."""

    store: ObjectStore
    keys: KeyProvider
    seal: SealSettings
    trust: TrustPolicy
    holds: HoldSource
    settings: VerificationSettings
    weak: WeakAlgorithms  # dated weak hashes ([evidence] weak_algorithms: verification.settings)
    as_of: datetime | None = None  # ``verify --at``: judged as if on that date (verification.as_of)
    # Timestamp renewals read so far, by key (one per renewed token: a few per tree, trees are
    # one per nightly run), shared by the records of a tree (archive.pipeline.evidence_current).
    renewals: dict[str, Renewal] = field(default_factory=dict)


class Evidence:
    """One record's object, stage by stage, each computed once and timed."""

    def __init__(self, row: CatalogRow, env: Environment) -> None:
        self.row = row
        self.env = env
        self._done: dict[str, tuple[bool, Any]] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.proven_at: datetime | None = None  # set by a passing evidence check

    def once(self, stage: str, fn: Callable[[], _T]) -> _T:
        """``fn``'s outcome, computed at most once per record (a check another check needs)."""
        return self._once(stage, fn)

    def fetched(self) -> ObjectRead:
        """The one GET: bytes, their SHA-256 as read, and the version's metadata if answered."""
        key, version = self.row.object_key, self.row.version_id
        return self._once("get", lambda: read_object(self.env.store, key, version))

    def head(self) -> ObjectHead:
        """The version's checksum, size and lock: from the GET's response when it says them
        all, else from a HEAD (a store that leaves them out, or a GET that failed otherwise than
        by a missing version: a damaged object is still present, and its lock still checked)."""
        try:
            answered = self.fetched().head
        except (ObjectNotFoundError, RehomedError, StoreUnavailableError):
            raise  # what a HEAD would answer too
        except Exception:  # noqa: BLE001 - unreadable: the object check reports it after the HEAD
            answered = None
        if answered is not None:
            return answered
        key, version = self.row.object_key, self.row.version_id
        return self._once("head", lambda: self.env.store.head(key, version_id=version))

    def sealed(self) -> bytes:
        return self.fetched().data

    def sealed_sha256(self) -> str:
        return self.fetched().sha256

    def pdf(self) -> bytes:
        """The unsealed PDF, only once the sealed bytes are the catalogued ones and opened."""
        try:
            matches = self.sealed_sha256() == self.row.sealed_sha256
        except Exception as e:
            raise NotReached("the object could not be read (see the object check)") from e
        if not matches:
            raise NotReached("the stored bytes differ from the catalog's (see the object check)")
        try:
            return self.unsealed()
        except Exception as e:
            raise NotReached("the object did not unseal (see the unseal check)") from e

    def unsealed(self) -> bytes:
        identity = ObjectIdentity(self.row.bucket, self.row.object_key, self.row.encounter_id)
        return self._once(
            "unseal",
            lambda: unseal(
                self.sealed(), identity=identity, keys=self.env.keys, settings=self.env.seal
            ),
        )

    def pdf_matches(self) -> bytes:
        """The PDF, only if it is the catalogued one: checks of a different document would
        report that document's findings, not the record's."""
        pdf = self.pdf()
        if self._once("pdf-hash", lambda: hashlib.sha256(pdf).hexdigest()) != self.row.pdf_sha256:
            raise NotReached("the PDF differs from the catalog's (see the unseal check)")
        return pdf

    def reader(self) -> PdfFileReader | None:
        """One strict reader of the catalogued PDF for every check (parsed once per record);
        None when it does not parse: each check then reports that in its own words."""
        pdf = self.pdf_matches()
        return self._once("parse", lambda: shared_reader(pdf))

    def timed(self, stage: str, fn: Callable[[], _T]) -> _T:
        begin = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[stage] += time.perf_counter() - begin

    def _once(self, stage: str, fn: Callable[[], _T]) -> _T:
        if stage not in self._done:
            try:
                self._done[stage] = (True, self.timed(stage, fn))
            except Exception as e:  # noqa: BLE001 - kept and re-raised to every asker
                self._done[stage] = (False, e)
        ok, value = self._done[stage]
        if not ok:
            raise value
        return cast(_T, value)


def read_object(store: ObjectStore, key: str, version_id: str) -> ObjectRead:
    """One GET with the version's metadata where the store answers it (the primary's S3 store,
    also inside the :class:`RehomedStore` every reader gets); a version a primary repair restored
    (missing at its catalogued id) is read through the re-homed store, which checks it."""
    inner = store.inner if isinstance(store, RehomedStore) else store
    if isinstance(inner, MetaReader):
        try:
            return inner.read(key, version_id=version_id)
        except ObjectNotFoundError:
            if inner is store:
                raise
    data = store.get(key, version_id=version_id)
    return ObjectRead(data, sha256_hex(data), None)
