"""Structural anomalies of a signed PDF, judged before pyHanko's AdES validation.

A document that cannot be parsed strictly, whose page tree is no tree, whose signature fields
carry a /SubFilter no validator knows or no usable CMS object, whose byte ranges overlap, or
whose timestamp is the same token twice is not "undecided": it is
a hostile or broken file, and a records officer needs the reason, not an exception's name. The
bytes and the strict reader go in; ``None`` (nothing anomalous) or a reason code and a sentence
come out. Sentences name fields, offsets and CMS types only: no document content, no PHI.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from asn1crypto import cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import CMSExtractionError, CMSStructuralError
from pyhanko.sign.validation import EmbeddedPdfSignature

from archive.render import page_tree_problem

__all__ = [
    "classify_error",
    "cms_problem",
    "duplicated",
    "malformed_page_tree",
    "overlapping_byte_range",
    "unknown_subfilter",
]

Finding = tuple[str, str]

# What pyHanko validates; it skips (with a warning) a signature of any other /SubFilter, which
# would leave the field unchecked and the document judged by its other signatures.
KNOWN_SUBFILTERS = frozenset(
    ("/adbe.pkcs7.detached", "/adbe.pkcs7.sha1", "/ETSI.CAdES.detached", "/ETSI.RFC3161")
)


def malformed_page_tree(reader: PdfFileReader) -> Finding | None:
    """A page tree with a cycle (a /Kids entry naming an ancestor, a /Parent loop): whatever the
    signatures say, no reader can be trusted to show what they cover."""
    problem = page_tree_problem(reader.root)
    return None if problem is None else ("sig.malformed", f"the page tree is no tree: {problem}")


def unknown_subfilter(reader: PdfFileReader) -> Finding | None:
    """The first filled signature field whose /SubFilter no validator knows."""
    for name, value, _ in enumerate_sig_fields(reader, filled_status=True):
        subfilter = value.get_object().get("/SubFilter") if value is not None else None
        if subfilter not in KNOWN_SUBFILTERS:
            return (
                "sig.unknown_subfilter",
                f"{name}: its /SubFilter {subfilter} is no signature format a PDF validator "
                "knows (the archive signs with /ETSI.CAdES.detached and /ETSI.RFC3161); the "
                "signature cannot be checked",
            )
    return None


def classify_error(error: Exception) -> str:
    """The reason code for an exception pyHanko raised on this document's structure.

    Anything else stays ``sig.error``: an exception we do not recognise is a question for the
    developers, and fail-closed as indeterminate is the honest verdict then.
    """
    if isinstance(error, CMSExtractionError | CMSStructuralError):
        return "sig.cms_invalid"
    if isinstance(error, PdfError | RecursionError):  # PdfReadError, PdfStrictReadError...
        return "sig.malformed"
    return "sig.error"


def cms_problem(reader: PdfFileReader) -> Finding | None:
    """The first signature field whose /Contents is not one SignedData with one SignerInfo.

    Called when pyHanko could not collect the signatures, to say which field and why."""
    for name, value, _ in enumerate_sig_fields(reader, filled_status=True):
        contents = value.get_object().get("/Contents") if value is not None else None
        if not isinstance(contents, generic.ByteStringObject | generic.TextStringObject):
            return "sig.cms_invalid", f"{name}: the signature carries no /Contents string"
        problem = _cms_problem(bytes(contents.original_bytes))
        if problem is not None:
            return "sig.cms_invalid", f"{name}: {problem}"
    return None


def _cms_problem(raw: bytes) -> str | None:
    if not raw.strip(b"\x00"):
        return "its /Contents is an empty, zero-filled placeholder: no CMS object"
    try:
        info = cms.ContentInfo.load(raw, strict=False)  # the placeholder's zero padding follows
        content_type = info["content_type"].native
        if content_type != "signed_data":
            return f"its CMS object is {content_type}, not SignedData"
        count = len(info["content"]["signer_infos"])
    except (ValueError, TypeError):  # asn1crypto's ways of saying "not this structure"
        return "its /Contents is not a DER-encoded CMS SignedData"
    if count != 1:
        return f"its SignedData carries {count} signer infos; exactly one is allowed"
    return None


def overlapping_byte_range(signatures: Sequence[EmbeddedPdfSignature], size: int) -> Finding | None:
    """A /ByteRange whose ranges overlap, run backwards or leave the file: bytes counted twice
    or digested from where no reader looks."""
    for sig in signatures:
        values = [int(v) for v in sig.byte_range]
        pairs = list(zip(values[0::2], values[1::2], strict=False))
        ends = [(start, start + length) for start, length in pairs]
        bad = len(values) % 2 or any(length < 0 or start < 0 for start, length in pairs)
        if bad or any(end > size for _, end in ends):
            return "sig.malformed", f"{sig.field_name}: the /ByteRange {values} leaves the file"
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ends)):
            return (
                "sig.byterange_overlap",
                f"{sig.field_name}: the /ByteRange {values} overlaps itself; a signature digests "
                "each byte of its revision once, in order",
            )
    return None


def duplicated(signatures: Sequence[EmbeddedPdfSignature]) -> Finding | None:
    """Two fields carrying the same CMS token: one timestamp (or signature) shown twice."""
    seen: dict[bytes, str] = {}
    for sig in signatures:
        token = bytes(sig.pkcs7_content)
        first = seen.setdefault(token, str(sig.field_name))
        if first != str(sig.field_name):
            what = "timestamp" if sig.sig_object_type == "/DocTimeStamp" else "signature"
            return (
                f"sig.{what}_duplicated",
                f"{sig.field_name}: the same {what} token as {first}, copied into another field",
            )
    return None
