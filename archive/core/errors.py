"""The one exception tree of emr-archive.

Every error the archive raises on purpose is an ``ArchiveError``. Foreign errors (botocore, pyHanko,
cryptography's ``InvalidTag``, pyarrow) are wrapped once, at the boundary where they occur, with
``raise ... from e`` so the cause stays available to a debugger but callers only need to know this
tree.

Messages say what happened and what to do next. They never contain PHI (names, national ids,
insurance numbers, diagnoses): messages end up in logs, Prefect's database and terminal output.
"""

from __future__ import annotations

from typing import ClassVar


class ArchiveError(Exception):
    """Base of every error emr-archive raises on purpose.

    Each class knows how it presents itself, so the CLI has one handler on its root group and the
    portal one mapping: ``exit_code`` for the command line, ``http_status`` for the web, and
    ``label`` for the start of the one line the CLI prints.
    """

    exit_code: ClassVar[int] = 2
    http_status: ClassVar[int] = 500
    label: ClassVar[str] = "error"


# --- configuration --------------------------------------------------------------------------------


class ConfigError(ArchiveError):
    """A setting is missing or invalid; the message names the setting and how to fix it."""


# --- keys -----------------------------------------------------------------------------------------


class KeyringError(ArchiveError):
    """The key store is missing, unreadable, has unsafe permissions or is malformed."""


class UnknownKeyError(KeyringError):
    """A sealed object names a key-encryption key (id or version) this key store does not hold."""


class KeyProviderUnavailableError(KeyringError):
    """The key provider (OpenBao/Vault, HSM) cannot be reached or refused the call: retry later.

    Never answered by falling back to another key or to plaintext: the record fails retryable.
    """

    http_status: ClassVar[int] = 503


# --- sealed envelope ------------------------------------------------------------------------------


class SealError(ArchiveError):
    """Sealing or unsealing failed. No plaintext is ever returned alongside this error."""


class EnvelopeFormatError(SealError):
    """The bytes are not a sealed object this version understands (magic, version, algorithm)."""


class EnvelopeIntegrityError(SealError):
    """Authentication failed: the sealed object was changed, truncated, extended, reordered,
    moved to another identity, or is opened with the wrong key."""


class KeyCommitmentError(EnvelopeIntegrityError):
    """The data key does not match the key commitment in the header."""


class DecompressionLimitError(SealError):
    """The plaintext would exceed the configured maximum size (a decompression bomb is refused)."""


# --- sources -------------------------------------------------------------------------------------


class RunInProgressError(ArchiveError):
    """Another archive run holds the catalog: this one is refused before doing any work."""


class WindowError(ArchiveError):
    """The days asked for cannot be archived as given (the last before the first, a day not
    over yet, a span longer than any archive holds): refused before any work."""

    label = "refused"


class SourceError(ArchiveError):
    """The export as a whole is unusable (missing, unreadable, incomplete, changed while read).

    Bad *records* never raise: they become quarantine entries.
    """


class SourceOutsideRootsError(ArchiveError):
    """A run was asked to read an export outside the configured source roots
    (``EMR_ARCHIVE_ARCHIVE__SOURCE_ROOTS``): refused before any work, and audited."""

    label = "refused"


# --- cluster workers -----------------------------------------------------------------------------


class ClusterUnavailableError(ArchiveError):
    """The Dask scheduler of ``[cluster] scheduler_address`` does not answer, or no worker has
    joined it: refused before any work (no batch would ever run; a run must not wait forever)."""

    exit_code: ClassVar[int] = 5
    http_status: ClassVar[int] = 503
    label: ClassVar[str] = "cluster unavailable"


class WorkerUnavailableError(ArchiveError):
    """A cluster worker cannot do its batch: the batch is counted failed under ``reason_code``,
    nothing of it is catalogued, and the next run retries it (on a worker that can)."""

    reason_code: ClassVar[str] = "worker.unavailable"


class WorkerSourceError(WorkerUnavailableError):
    """The worker cannot read the run's source directory (not mounted, no permission)."""

    reason_code = "worker.source_unavailable"


class WorkerStoreError(WorkerUnavailableError):
    """The worker cannot reach the store or has no credentials for it."""

    reason_code = "worker.store_unavailable"


class WorkerKeysError(WorkerUnavailableError):
    """The worker cannot open the key-encryption keys or the signing key."""

    reason_code = "worker.keys_unavailable"


# --- audit log -----------------------------------------------------------------------------------


class AuditChainError(ArchiveError):
    """A hash-chained log (audit log, retention or access register) was edited, cut, rolled back
    or chained on outside the archive, or its local copy and the locked bucket copies disagree:
    stop appending and investigate."""


# --- documents -----------------------------------------------------------------------------------


class RenderError(ArchiveError):
    """A document cannot be rendered (missing font, uncovered character, bad input)."""


class PdfaError(ArchiveError):
    """The PDF does not hold what the archive put in it (e.g. no embedded FHIR Bundle)."""


# --- signatures ----------------------------------------------------------------------------------


class SigningError(ArchiveError):
    """Signing failed or was refused; nothing signed is returned with this error."""


class CertificateRefusedError(SigningError):
    """The signing (or TSA) certificate must not be used: expired, not yet valid, revoked, not
    chaining to the trust roots, or without the required key usage."""

    def __init__(self, subject_cn: str, reason: str, detail: str, *, tsa: bool = False) -> None:
        if tsa:
            message = (
                f"refusing timestamps signed with the TSA certificate {subject_cn!r}: {detail}. "
                "Check EMR_ARCHIVE_SIGNER__TSA_URL and __TSA_TRUST_ROOTS"
            )
        else:
            message = (
                f"refusing to sign with the certificate {subject_cn!r}: {detail}. Configure a "
                "valid certificate from a trusted CA (EMR_ARCHIVE_SIGNER__PKCS12_PATH)"
            )
        super().__init__(message)
        self.subject_cn = subject_cn
        self.reason = reason  # expired, not_yet_valid, revoked, untrusted, invalid


class TrustServiceUnavailableError(SigningError):
    """The TSA or an OCSP responder/CRL server kept failing after retries; sign in a later run."""


class TimestampUnavailableError(TrustServiceUnavailableError):
    """The TSA did not grant a timestamp after retries."""


class RevocationUnavailableError(TrustServiceUnavailableError):
    """No OCSP response or CRL could be fetched for a certificate after retries."""


class TokenUnavailableError(SigningError):
    """The PKCS#11 token or HSM holding the signing key cannot sign now: removed, its session
    broken, its PIN locked. Nothing was signed; the records wait for the next run."""

    http_status: ClassVar[int] = 503


class RemoteSignerUnavailableError(TrustServiceUnavailableError):
    """The remote signing service (CSC API) did not answer, refused, or returned a signature
    that does not verify; the documents of its batch stay unsigned for a later run."""


class SignatureReadError(ArchiveError):
    """The signatures or document timestamps of a PDF cannot be read."""


# --- object store ---------------------------------------------------------------------------------


class StoreError(ArchiveError):
    """The object store refused or failed an operation."""


class StoreUnavailableError(StoreError):
    """The object store cannot be reached, or kept failing after retries."""

    http_status: ClassVar[int] = 503


class BucketNotCompliantError(StoreError):
    """The bucket lacks Object Lock or versioning; the archive refuses to write to it."""


class ObjectConflictError(StoreError):
    """A different object already exists under a key the archive meant to create once."""


class ObjectNotFoundError(StoreError):
    """The key, or the exact version of it, does not exist in the bucket."""

    http_status: ClassVar[int] = 404


class LockRefusedError(StoreError):
    """The store refused a change to an object's lock (as WORM storage must when asked to
    shorten a retention, weaken the mode or delete a locked version)."""


class ReplicaError(StoreUnavailableError):
    """The replica site did not confirm a write, or holds other bytes than the primary: the
    object is not yet at two sites, so nothing that depends on it is catalogued (retry later)."""


class RehomedError(StoreError):
    """The re-homed map (catalogued version -> the version a primary repair restored) is not
    whole: a segment unlocked, out of chain or altered, or an entry whose SHA-256 is not the
    catalog's. Nothing is served through it; the primary's repair or an intrusion is to blame."""


# --- catalog --------------------------------------------------------------------------------------


class CatalogError(ArchiveError):
    """The catalog cannot be read or written."""


class ManifestCorruptError(CatalogError):
    """A manifest file cannot be parsed, or its bytes do not match the hash recorded for it."""


class ChainBrokenError(CatalogError):
    """The hash chain of manifests is broken: a manifest is missing, altered or out of order."""


# --- evidence records (RFC 4998) ----------------------------------------------------------------


class EvidenceError(ArchiveError):
    """An evidence record cannot be built or read."""


class EvidenceFormatError(EvidenceError):
    """The bytes are not an RFC 4998 evidence record this archive can judge (bad DER, wrong
    version, a missing timestamp, an unknown algorithm): the verdict is ``evidence.malformed``."""
