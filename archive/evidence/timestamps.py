"""The RFC 3161 token check the validator is given: pyHanko's, against the TSA roots passed in.

One token, one moment: the CMS signature over the TSTInfo, the TSA certificate's path to one of
the roots, its key usage (timeStamping), and that path's validity *at that moment* (the time of
the next timestamp, or the as-of date for the newest). No fetching: an archive's proof has to
stand on what it carries and on the roots it was given.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import cms, crl, ocsp, x509
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from archive.evidence.validate import TimestampRejectedError
from archive.evidence.verdict import CHAIN_BROKEN, EXPIRED, WEAK_ALGORITHM

__all__ = ["TsaTrust", "with_validation_data"]

_EXPIRED = {AdESIndeterminate.OUT_OF_BOUNDS_NO_POE, AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED}
_WEAK = {
    AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE,
    AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
}


class TsaTrust:
    """A :class:`~archive.evidence.validate.TimestampCheck` trusting ``roots`` only.

    ``revocation_mode`` is pyHanko's: ``soft-fail`` (the default) accepts a TSA certificate
    whose revocation status cannot be learnt offline, ``hard-fail`` refuses it; revocation data
    to go on is passed as ``ocsps``/``crls`` (DER), as a record's CryptoInfos would carry it.
    """

    def __init__(
        self,
        roots: Sequence[x509.Certificate],
        *,
        revocation_mode: str = "soft-fail",
        ocsps: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
    ) -> None:
        if not roots:
            raise ValueError("a timestamp check needs at least one TSA trust root")
        self._roots = list(roots)
        self._revocation_mode = revocation_mode
        self._ocsps = list(ocsps)
        self._crls = list(crls)
        # One run's records share their tokens: the first record pays pyHanko's check (~10 ms),
        # the others look the outcome up by (token, moment). Bounded: a verification holds a few
        # tokens per run and renewal, far fewer than this.
        self._seen: OrderedDict[tuple[bytes, datetime], TimestampRejectedError | None] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    _CACHED = 4096

    def __call__(self, token: cms.ContentInfo, valid_at: datetime) -> None:
        key = (hashlib.sha256(token.dump()).digest(), valid_at)
        with self._lock:
            seen = key in self._seen
            known = self._seen.get(key)
        if not seen:
            try:
                self._check(token, valid_at)
            except TimestampRejectedError as e:
                known = e
            with self._lock:
                self._seen[key] = known
                if len(self._seen) > self._CACHED:
                    self._seen.popitem(last=False)
        if known is not None:  # a fresh exception each time: one raised carries its traceback
            raise TimestampRejectedError(known.code, str(known))

    def _check(self, token: cms.ContentInfo, valid_at: datetime) -> None:
        status = asyncio.run(self._validate(token, valid_at))
        cert: x509.Certificate = status["signing_cert"]
        who = f"the timestamp of {status['timestamp']} by {cert.subject.human_friendly!r}"
        if not (status["intact"] and status["valid"]):
            raise TimestampRejectedError(CHAIN_BROKEN, f"{who} has a broken signature")
        problem = status["trust_problem_indic"]
        if problem is None:
            return
        if problem in _EXPIRED:
            raise TimestampRejectedError(
                EXPIRED,
                f"{who} was not renewed before its TSA certificate lapsed "
                f"(needed valid at {valid_at}, it ends {cert.not_valid_after})",
            )
        code = WEAK_ALGORITHM if problem in _WEAK else CHAIN_BROKEN
        raise TimestampRejectedError(code, f"{who} is not trusted at {valid_at}: {problem}")

    async def _validate(self, token: cms.ContentInfo, valid_at: datetime) -> dict[str, object]:
        signed: cms.SignedData = token["content"]
        context = ValidationContext(
            trust_roots=self._roots,
            moment=valid_at,
            allow_fetching=False,
            revocation_mode=self._revocation_mode,
            ocsps=self._ocsps,
            crls=self._crls,
        )
        imprint = signed["encap_content_info"]["content"].parsed["message_imprint"]
        expected = imprint["hashed_message"].native  # the validator compares it with the root
        try:
            result: dict[str, object] = await validate_tst_signed_data(
                signed, context, lambda _algorithm: expected
            )
        except (SignatureValidationError, ValueError, TypeError, KeyError, AttributeError) as e:
            raise TimestampRejectedError(CHAIN_BROKEN, f"unreadable timestamp token: {e}") from e
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]
        return result


def with_validation_data(
    token: cms.ContentInfo, *, crls: Sequence[bytes] = (), ocsps: Sequence[bytes] = ()
) -> cms.ContentInfo:
    """``token`` carrying the revocation data of its TSA's certificates in the SignedData's
    ``crls`` field (OCSP responses as RFC 5940 other revocation info).

    That field is not signed, so adding to it leaves the token valid; it has to be done before
    any record is built on the token, since a timestamp renewal covers the token's whole DER
    (RFC 4998 §5.2), and that is what protects this data for the decades to come. Without it an
    offline validator cannot tell the TSA certificate was not revoked: EU DSS leaves such a
    timestamp INDETERMINATE (no revocation data found for the certificate).
    """
    signed = token["content"].copy()
    carried = list(signed["crls"]) if isinstance(signed["crls"], cms.RevocationInfoChoices) else []
    carried += [
        cms.RevocationInfoChoice(name="crl", value=crl.CertificateList.load(c)) for c in crls
    ]
    carried += [
        cms.RevocationInfoChoice(
            name="other",
            value=cms.OtherRevocationInfoFormat(
                {
                    "other_rev_info_format": "ocsp_response",
                    "other_rev_info": ocsp.OCSPResponse.load(o),
                }
            ),
        )
        for o in ocsps
    ]
    signed["crls"] = cms.RevocationInfoChoices(carried)
    return cms.ContentInfo({"content_type": "signed_data", "content": signed})
