"""Which certificate the newest document timestamp relies on, read without validating.

A signed PDF goes in; the TSA certificate's fingerprint and expiry come out, or None when the
document carries no document timestamp. The renewal horizon needs only this to know which
certificate to watch; whether the timestamp is valid is the verifier's question.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import extract_certificate_info

from archive.core.errors import SignatureReadError

__all__ = ["NewestTimestamp", "newest_document_timestamp"]


@dataclass(frozen=True, slots=True)
class NewestTimestamp:
    """What the renewal horizon needs: the TSA certificate the newest document timestamp relies
    on, when it expires, and the timestamp's hash algorithm."""

    field_name: str
    time: datetime
    tsa_cert_sha256: str
    tsa_cert_not_after: datetime
    hash_algorithm: str


def newest_document_timestamp(
    pdf: bytes, *, reader: PdfFileReader | None = None
) -> NewestTimestamp | None:
    """The newest document timestamp's TSA certificate and expiry; None if there is none.

    Read only, not validated: the verifier validates; the renewal horizon only needs to know
    which certificate to watch. ``reader``: a strict reader of these bytes, if at hand.
    """
    try:
        reader = reader or PdfFileReader(io.BytesIO(pdf), strict=True)
        timestamps = list(reader.embedded_timestamp_signatures)
        if not timestamps:
            return None
        newest = timestamps[-1]
        token: cms.SignedData = newest.signed_data
        cert = extract_certificate_info(token).signer_cert
        info = token["encap_content_info"]["content"].parsed
    except Exception as e:  # pyHanko and asn1crypto raise many types
        raise SignatureReadError(
            f"cannot read the document timestamps ({type(e).__name__}); the file is damaged or "
            "not a signed PDF: run the verifier on it"
        ) from e
    return NewestTimestamp(
        field_name=str(newest.field_name),
        time=info["gen_time"].native,
        tsa_cert_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        tsa_cert_not_after=cert["tbs_certificate"]["validity"]["not_after"].native,
        hash_algorithm=info["message_imprint"]["hash_algorithm"]["algorithm"].native,
    )
