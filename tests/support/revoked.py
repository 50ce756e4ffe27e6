"""A B-LTA document signed with the development PKI's revoked signer.

pyHanko refuses to embed validation data for a revoked certificate, so the document is built
the way a forger with the stolen key would: signed and timestamped (B-T), then the validation
data added without validation (the genuine document's DSS — same CA, same TSA — plus the OCSP
response that says the signer is revoked), then a document timestamp over it all.
"""

from __future__ import annotations

import asyncio
import io

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from tests.support.attacks import Attack, _certificate, sign_directly


def revoked_signer_lta(attack: Attack) -> bytes:
    """B-LTA by ``revoked-signer``; the OCSP response in its DSS says revoked."""
    signed = sign_directly(attack, "revoked-signer", timestamp=True)
    genuine = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(attack.signed)))
    revoked = _certificate(attack.pki.cert_path("revoked-signer"))
    issuer = _issuer(revoked, list(genuine.load_certs()))

    async def build() -> bytes:
        fetchers = RequestsFetcherBackend().get_fetchers()
        response = await fetchers.ocsp_fetcher.fetch(revoked, AuthorityWithCert(issuer))
        reader = PdfFileReader(io.BytesIO(signed))
        [signature] = reader.embedded_signatures
        out = io.BytesIO(signed)
        DocumentSecurityStore.add_dss(
            out,
            signature.pkcs7_content,
            certs=[revoked, *genuine.load_certs()],
            ocsps=[response, *_ocsps(genuine)],
            crls=_crls(genuine),
        )
        writer = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))
        stamper = signers.PdfTimeStamper(HTTPTimeStamper(attack.pki.tsa_url))
        stamped = await stamper.async_timestamp_pdf(writer, "sha256")
        return bytes(stamped.getvalue())

    return asyncio.run(build())


def _issuer(cert: x509.Certificate, known: list[x509.Certificate]) -> x509.Certificate:
    for candidate in known:
        if candidate.subject == cert.issuer:
            return candidate
    raise AssertionError("the revoked signer's CA is not in the genuine document's DSS")


def _ocsps(dss: DocumentSecurityStore) -> list[ocsp.OCSPResponse]:
    return [ocsp.OCSPResponse.load(ref.get_object().data) for ref in dss.ocsps]


def _crls(dss: DocumentSecurityStore) -> list[crl.CertificateList]:
    return [crl.CertificateList.load(ref.get_object().data) for ref in dss.crls]
