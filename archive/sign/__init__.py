"""Sign: a rendered PDF in, a PAdES B-LTA signed PDF out; and the validation of such signatures.

Signing (``signer``) takes the PDF bytes and the hospital's key, certificate, TSA and revocation
sources; returns the signed bytes with a signature timestamp, the validation data and a document
timestamp, so the document validates offline for decades. Validation (``validate``) takes a PDF
and a :class:`TrustPolicy` (trust roots for signers and TSAs, the hospital's own signing
certificates) and returns a report; it never signs.
"""

from archive.sign import (
    name_equality,
    name_prep,
    parsed_der,
    path_cache,
    pdf_tokens,
    ref_paths,
)
from archive.sign.config import RetryPolicy, SignerConfig, load_trust_roots
from archive.sign.identity import SignerIdentity, SigningKey
from archive.sign.key import load_signer
from archive.sign.library_log import captured_library_log
from archive.sign.newest_timestamp import NewestTimestamp, newest_document_timestamp
from archive.sign.outcomes import SignedDocument, SignFailure, SignOutcome
from archive.sign.report import SignatureCheck, SignatureReport
from archive.sign.signer import DocumentSigner
from archive.sign.trust import TrustPolicy
from archive.sign.validate import validate_pdf_signatures
from archive.sign.worker import init_worker, sign_in_worker

__all__ = [
    "DocumentSigner",
    "NewestTimestamp",
    "RetryPolicy",
    "SignFailure",
    "SignOutcome",
    "SignatureCheck",
    "SignatureReport",
    "SignedDocument",
    "SignerConfig",
    "SignerIdentity",
    "SigningKey",
    "TrustPolicy",
    "captured_library_log",
    "init_worker",
    "load_signer",
    "load_trust_roots",
    "newest_document_timestamp",
    "sign_in_worker",
    "validate_pdf_signatures",
]

# Certificate names are compared by their prepared values: each distinct value is prepared once
# per process instead of once per parsed copy (archive.sign.name_prep), each distinct pair of
# names compared once (archive.sign.name_equality).
name_prep.install()
name_equality.install()
# Plain names and integer arrays are read in one step, not a byte at a time: same objects and
# errors (archive.sign.pdf_tokens); the incremental-update analysis reads every signed object.
pdf_tokens.install()
# The map of every path to each signed object walks only values that can hold a reference, and
# each object's newest revision is looked up once per document: same paths, answers and errors
# (archive.sign.ref_paths); that map was over half of the incremental-update analysis.
ref_paths.install()
# Path + revocation validation answers are reused for a later document only where the same
# inputs give the same answer at its moment (archive.sign.path_cache).
path_cache.install()
# Certificates, OCSP responses and CRLs: each distinct one parsed once per thread, not once per
# document and use (archive.sign.parsed_der).
parsed_der.install()
