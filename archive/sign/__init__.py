"""Sign: a rendered PDF in, a PAdES B-LTA signed PDF out; and the validation of such signatures.

Signing takes the PDF bytes and the hospital's key, certificate, TSA and revocation sources;
returns the signed bytes with a signature timestamp, the validation data and a document timestamp,
so the document validates offline for decades. Validation (``validate``) takes a PDF and trust
roots and returns a report; it never signs.
"""

from archive.sign.signer import (
    DocumentSigner,
    RetryPolicy,
    SignedDocument,
    SignerConfig,
    SignFailure,
    init_worker,
    load_signer,
    load_trust_roots,
    sign_in_worker,
)
from archive.sign.validate import (
    SignatureReport,
    newest_document_timestamp,
    validate_pdf_signatures,
)

__all__ = [
    "DocumentSigner",
    "RetryPolicy",
    "SignFailure",
    "SignatureReport",
    "SignedDocument",
    "SignerConfig",
    "init_worker",
    "load_signer",
    "load_trust_roots",
    "newest_document_timestamp",
    "sign_in_worker",
    "validate_pdf_signatures",
]
