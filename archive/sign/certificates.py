"""Whether a certificate may be used now: the signer's before a run, a TSA's when first seen.

A certificate, the certificates that may complete its path, a validation context and the roots
the path must end in (the signer's trust roots, or the TSA trust roots) go in; the validated path
comes out (it goes into the DSS), or an error that names the certificate and says why it was
refused. One context serves both kinds of certificate (their OCSP responses and CRLs go into the
same DSS), so it trusts the union of both root lists; which of them a path must end in is checked
here, before anything is fetched: a national root list among the signer roots must not let a TSA
the hospital never chose timestamp its records, and the reverse. Revocation servers that do not
answer are a :class:`TransientError`, which the run retries, not a refusal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from asn1crypto import x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.path import ValidationPath

from archive.core.errors import (
    CertificateRefusedError,
    RevocationUnavailableError,
    TrustServiceUnavailableError,
)

__all__ = [
    "SIGNER_KEY_USAGE",
    "SIGNER_ROOTS_SETTING",
    "TSA_ROOTS_SETTING",
    "TransientError",
    "cert_sha256",
    "common_name",
    "validate_cert",
]

SIGNER_KEY_USAGE = frozenset({"non_repudiation"})
SIGNER_ROOTS_SETTING = "EMR_ARCHIVE_SIGNER__TRUST_ROOTS"
TSA_ROOTS_SETTING = "EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS"


class TransientError(Exception):
    """A trust service failed in a way a retry may fix; ``final`` is what to raise after the
    last attempt."""

    def __init__(self, final: TrustServiceUnavailableError) -> None:
        super().__init__(str(final))
        self.final = final


async def validate_cert(
    cert: x509.Certificate,
    others: Sequence[x509.Certificate],
    context: ValidationContext,
    *,
    anchors: Sequence[x509.Certificate],
    key_usage: frozenset[str] = frozenset(),
    time_stamping: bool = False,
) -> ValidationPath:
    """Path (ending in one of ``anchors``), validity, revocation and usage of ``cert`` now;
    refusals name the certificate."""
    validator = CertificateValidator(cert, intermediate_certs=others, validation_context=context)
    extended = {"time_stamping"} if time_stamping else None
    cn = common_name(cert)

    def refused(reason: str, detail: str) -> CertificateRefusedError:
        return CertificateRefusedError(cn, reason, detail, tsa=time_stamping)

    setting = TSA_ROOTS_SETTING if time_stamping else SIGNER_ROOTS_SETTING
    untrusted = refused("untrusted", f"it does not chain to a configured trust root ({setting})")
    # Before validation fetches anything: a foreign TSA's revocation servers must not turn a
    # refusal into "try again later".
    if not await _chains_to(cert, context, anchors):
        raise untrusted
    try:
        path: ValidationPath = await validator.async_validate_usage(  # type: ignore[no-untyped-call]
            set(key_usage), extended_key_usage=extended
        )
    except InsufficientRevinfoError as e:
        raise TransientError(
            RevocationUnavailableError(
                f"no OCSP response or CRL could be obtained for the certificate {cn!r} "
                f"({e.failure_msg}); sign in a later run or check the responder's reachability"
            )
        ) from e
    except RevokedError as e:
        detail = f"it was revoked on {e.revocation_dt:%Y-%m-%d} ({e.reason.human_friendly})"
        raise refused("revoked", detail) from e
    except ExpiredError as e:
        detail = f"it expired on {e.expired_dt:%Y-%m-%d}"
        raise refused("expired", detail) from e
    except NotYetValidError as e:
        detail = f"it is not valid before {e.valid_from:%Y-%m-%d}"
        raise refused("not_yet_valid", detail) from e
    except PathBuildingError as e:
        raise untrusted from e
    except (PathValidationError, InvalidCertificateError) as e:
        raise refused("invalid", f"it failed validation: {e}") from e
    if not _ends_in(path, anchors):  # validated along a path to the other kind of root
        raise untrusted
    return path


async def _chains_to(
    cert: x509.Certificate, context: ValidationContext, anchors: Sequence[x509.Certificate]
) -> bool:
    try:
        paths = await context.path_builder.async_build_paths(cert)
    except PathBuildingError:
        return False
    return any(_ends_in(path, anchors) for path in paths)


def _ends_in(path: ValidationPath, anchors: Sequence[x509.Certificate]) -> bool:
    anchor = path.trust_anchor
    root = anchor.certificate if isinstance(anchor, CertTrustAnchor) else None
    return root is not None and any(root.dump() == a.dump() for a in anchors)


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def common_name(cert: x509.Certificate) -> str:
    name = cert.subject.native.get("common_name")
    return name if isinstance(name, str) else str(cert.subject.human_friendly)
