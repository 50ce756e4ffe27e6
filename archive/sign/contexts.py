"""One document's validation contexts over its DSS, and which certificates chain to which roots.

The DSS (``/DSS``: certificates, OCSP responses, CRLs) is read once per document, not once per
signature and question. Whether a path leads from a certificate to a set of roots is the same
answer for every document that carries the same certificates: path building looks at nothing
but the certificates (issuer names, keys identifiers; no time, no revocation — AdES judges those
per document), and nothing is fetched. So the answer is kept per process, keyed by the SHA-256
of the DER of the certificate, of every root and of every other certificate offered: a document
that offers one certificate more or less, or another signer, is a different question and gets
built afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from threading import Lock
from typing import Any, Final

from asn1crypto import cms, x509
from asn1crypto.crl import CertificateList
from asn1crypto.ocsp import OCSPResponse
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import general
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError

from archive.sign import parsed_der

ChainKey = tuple[bytes, frozenset[bytes], frozenset[bytes]]

_LIMIT: Final = 4096  # distinct (certificate, roots, offered certificates): a few per signer
_CHAINS: OrderedDict[ChainKey, bool] = OrderedDict()
_LOCK = Lock()


class DocumentContexts:
    """Validation contexts for one document (one reader), as of ``moment``, offline."""

    def __init__(
        self, reader: PdfFileReader, roots: Sequence[x509.Certificate], moment: datetime
    ) -> None:
        self._roots = list(roots)
        self._moment = moment
        try:
            self._dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
        except NoDSSFoundError:
            self._dss = None
        self._dss_certs = (
            [
                _load(r, x509.Certificate, DecodePurpose.CERTIFICATE)
                for r in self._dss.certs.values()
            ]
            if self._dss is not None
            else []
        )
        self._revinfo: tuple[list[OCSPResponse], list[CertificateList]] | None = None

    def context(
        self,
        signed_data: cms.SignedData,
        roots: Sequence[x509.Certificate] | None = None,
        others: Sequence[x509.Certificate] = (),
    ) -> ValidationContext:
        """A hard-fail, non-fetching context with the DSS's validation data, the token's own
        certificates and ``others``; trust ``roots`` (default: every root of the policy)."""
        ocsps, crls = self._revocation_data()
        return ValidationContext(
            trust_roots=list(self._roots if roots is None else roots),
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=self._moment,
            other_certs=[*self._dss_certs, *embedded_certs(signed_data), *others],
            ocsps=ocsps,  # without a DSS there is simply nothing to go on
            crls=crls,
        )

    def _revocation_data(self) -> tuple[list[OCSPResponse], list[CertificateList]]:
        """The DSS's OCSP responses and CRLs, parsed on first use and once per document, in the
        order pyHanko's ``DocumentSecurityStore.as_validation_context`` gives them (which parses
        them, and the certificates, again on every call)."""
        if self._revinfo is None:
            dss = self._dss
            ocsps = (
                [_load(r, OCSPResponse, DecodePurpose.OCSP_RESPONSE) for r in dss.ocsps]
                if dss is not None
                else []
            )
            crls = (
                [_load(r, CertificateList, DecodePurpose.CRL) for r in dss.crls]
                if dss is not None
                else []
            )
            self._revinfo = (ocsps, crls)
        return list(self._revinfo[0]), list(self._revinfo[1])

    async def chains(
        self,
        signed_data: cms.SignedData,
        cert: x509.Certificate,
        roots: Sequence[x509.Certificate],
        others: Sequence[x509.Certificate] = (),
    ) -> bool:
        """Whether any path leads from ``cert`` to one of ``roots`` through the certificates
        this document offers (the DSS's, the token's, ``others``)."""
        offered = [*self._dss_certs, *embedded_certs(signed_data), *others]
        key: ChainKey = (  # SHA-256s of the DER (parsed_der notes them for what it parsed)
            parsed_der.digest(cert),
            frozenset(parsed_der.digest(r) for r in roots),
            frozenset(parsed_der.digest(c) for c in offered),
        )
        with _LOCK:
            known = _CHAINS.get(key)
        if known is not None:
            return known
        context = self.context(signed_data, roots, others)
        try:
            await context.path_builder.async_build_paths(cert)
            found = True
        except PathBuildingError:
            found = False
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        with _LOCK:
            _CHAINS[key] = found
            while len(_CHAINS) > _LIMIT:
                _CHAINS.popitem(last=False)
        return found


def _load(ref: generic.IndirectObject, kind: Any, purpose: DecodePurpose) -> Any:
    stream: generic.StreamObject = ref.get_object()  # type: ignore[no-untyped-call]
    return parsed_der.load(kind, stream.read_data(purpose))


def embedded_certs(signed_data: cms.SignedData) -> list[x509.Certificate]:
    info = general.extract_certificate_info(signed_data)  # parsed_der's, when installed
    return [info.signer_cert, *info.other_certs]


def forget_chains() -> None:
    """Empty the process's chain answers (tests)."""
    with _LOCK:
        _CHAINS.clear()
