"""The facility's XML signature over a QĐ 130 file (``GIAMDINHHS/CHUKYDONVI``), by signxml.

A HIS signs the whole ``GIAMDINHHS`` document (XML-DSig, enveloped: one ``Reference URI=""``
with the enveloped-signature transform) and puts the ``ds:Signature`` in ``CHUKYDONVI``; many
exports leave it empty. :func:`verify_file` accepts only that shape. A signature over anything
less than the whole file (an ``Id``-referenced HOSO or header) is refused as such, which is what
defeats signature wrapping (XSW): with one reference to the whole document there is no second
place for a forged element to hide, and every byte the collector reads is the signed one.

Trust is a set of facility certificates, configured (``EMR_ARCHIVE_ARCHIVE__FACILITY_CERTS``, a
PEM file; the hospital's own signing certificates, pinned by their SHA-256): the certificate in
the signature's ``KeyInfo`` must be one of them and the signature must verify with it. No chain
to a CA is built: the Vietnamese public CAs that issue these certificates are not what says
which key is *this* hospital's, the records department does, by handing over its certificate.
Without configured certificates a signature is still checked for integrity against the
certificate it carries and recorded as "unverified" (it proves the file is unchanged, not who
signed it); a broken signature is refused either way.

The file is loaded whole (a signature covers every byte), so only files up to ``max_bytes`` are
checked; a larger one is recorded as "unverified". It has already passed the hardened streaming
pass (no DTD, no entity, UTF-8, bounded depth) before it gets here; the parser used here is
hardened again (no entity resolution, no network, no DTD loading).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from archive.sources.model import FacilitySignature
from archive.sources.qd130.hardening import XmlRefusedError
from archive.sources.quarantine import QuarantineReason

R = QuarantineReason
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
_NS: Final = {"ds": DS}
_SIGNATURE: Final = f"{{{DS}}}Signature"
_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_MAX_PEM: Final = 1 << 20
_FAILURES: Final = (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput)


@dataclass(frozen=True, slots=True)
class FacilityTrust:
    """The facility certificates a ``CHUKYDONVI`` signature must be made with, by SHA-256."""

    certs: Mapping[str, x509.Certificate] = field(default_factory=dict)

    @classmethod
    def of(cls, certs: Iterable[x509.Certificate]) -> FacilityTrust:
        return cls({_sha256(c): c for c in certs})

    @property
    def sha256s(self) -> set[str]:
        return set(self.certs)


def load_facility_trust(path: Path | None) -> FacilityTrust:
    """The certificates of the PEM file ``path`` (none when unset); ValueError if it holds none."""
    if path is None:
        return FacilityTrust()
    with path.open("rb") as handle:
        data = handle.read(_MAX_PEM + 1)
    if len(data) > _MAX_PEM:
        raise ValueError(f"{path} is larger than {_MAX_PEM >> 20} MiB: not a certificate list")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError(f"{path} holds no PEM certificate (facility XML signing)") from None
    return FacilityTrust.of(certs)


def verify_file(data: bytes, trust: FacilityTrust, *, max_bytes: int) -> FacilitySignature:
    """The facility signature of the file ``data``; :class:`XmlRefusedError` with reason
    ``facility-signature-invalid`` when one is present and cannot be accepted."""
    if len(data) > max_bytes:
        return too_large_to_check(max_bytes)
    root = _parse(data)
    holder = root.find("CHUKYDONVI") if root.tag == "GIAMDINHHS" else None
    signatures = list(root.iter(_SIGNATURE))
    if holder is None or (not signatures and not len(holder) and not (holder.text or "").strip()):
        if signatures:
            _refuse("a ds:Signature outside CHUKYDONVI")
        return FacilitySignature(status="absent")
    if not signatures:
        _refuse("CHUKYDONVI holds no XML signature")
    if len(signatures) != 1 or signatures[0].getparent() is not holder:
        _refuse("the file must hold exactly one ds:Signature, inside CHUKYDONVI")
    signature = signatures[0]
    _require_whole_file(signature)
    cert, digest, subject = _certificate(signature)
    if trust.certs and digest not in trust.certs:
        _refuse("signed by a certificate not among the facility certificates")
    config = SignatureConfiguration(location="./CHUKYDONVI/", expect_references=1)
    try:
        result: Any = XMLVerifier().verify(
            data, x509_cert=trust.certs.get(digest, cert), parser=_parser(), expect_config=config
        )
    except _FAILURES as e:
        _refuse(f"the signature does not verify ({type(e).__name__})")
    if getattr(result.signed_xml, "tag", None) != "GIAMDINHHS":
        _refuse("the signature does not cover the whole file")
    if not trust.certs:
        detail = "intact, but no facility certificate is configured to say whose key it is"
        return FacilitySignature(
            status="unverified", signer_subject=subject, signer_sha256=digest, detail=detail
        )
    return FacilitySignature(status="valid", signer_subject=subject, signer_sha256=digest)


def too_large_to_check(max_bytes: int) -> FacilitySignature:
    return FacilitySignature(
        status="unverified",
        detail=f"file larger than {max_bytes / (1 << 20):g} MiB: its signature was not checked",
    )


def _parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def _parse(data: bytes) -> Any:
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise XmlRefusedError(R.MALFORMED_XML, "the file is not well-formed XML") from None
    if root.getroottree().docinfo.doctype:
        raise XmlRefusedError(R.HOSTILE_XML, "the file holds a DOCTYPE declaration")
    return root


def _require_whole_file(signature: Any) -> None:
    references = signature.findall("ds:SignedInfo/ds:Reference", _NS)
    if len(references) != 1 or references[0].get("URI") != "":
        _refuse('the signature does not cover the whole file (one Reference URI="" expected)')
    transforms = [t.get("Algorithm") for t in references[0].findall("ds:Transforms/*", _NS)]
    if _ENVELOPED not in transforms:
        _refuse("the signature does not cover the whole file (not an enveloped signature)")


def _certificate(signature: Any) -> tuple[x509.Certificate, str, str]:
    """The signature's certificate, its SHA-256 and subject."""
    found = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if len(found) != 1:
        _refuse("the signature must carry exactly one X509Certificate")
    try:
        der = base64.b64decode("".join((found[0].text or "").split()), validate=True)
        return _loaded(der)
    except (binascii.Error, ValueError):
        _refuse("the signature's certificate is unreadable")


@functools.lru_cache(maxsize=16)
def _loaded(der: bytes) -> tuple[x509.Certificate, str, str]:
    """Parsed once per certificate: a facility signs every file of the day with the same one."""
    cert = x509.load_der_x509_certificate(der)
    return cert, _sha256(cert), cert.subject.rfc4514_string()


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _refuse(detail: str) -> NoReturn:
    raise XmlRefusedError(R.FACILITY_SIGNATURE_INVALID, f"facility signature: {detail}")
