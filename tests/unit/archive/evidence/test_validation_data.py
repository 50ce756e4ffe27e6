"""Revocation data attached to a timestamp token: carried in its unsigned ``crls`` field, the
token still verifies, and a record built on it still proves its document."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from asn1crypto import cms, ocsp
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from archive.evidence import (
    DataObject,
    HashTree,
    TsaTrust,
    WeakAlgorithms,
    new_record,
    validate_evidence,
    with_validation_data,
)
from tests.support.evidence import local_tsa

AT = datetime(2026, 6, 1, tzinfo=UTC)
TSA = local_tsa(datetime(2025, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), "CRL TSA")


def _crl() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "Some CA")])
    built = (
        cx509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(AT)
        .next_update(AT + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.DER)


def _signed_parts(token: cms.ContentInfo) -> tuple[bytes, bytes, bytes]:
    signed = token["content"]
    return (
        signed["encap_content_info"].dump(),
        signed["signer_infos"].dump(),
        signed["certificates"].dump(),
    )


def test_revocation_data_rides_in_the_unsigned_field_and_the_token_still_verifies() -> None:
    doc = b"a signed pdf" * 10
    tree = HashTree.build("sha256", [hashlib.sha256(doc).digest()])
    bare = TSA.stamp(tree.root, "sha256", AT)
    crl, status = _crl(), ocsp.OCSPResponse({"response_status": "try_later"}).dump()
    token = with_validation_data(bare, crls=[crl], ocsps=[status])
    again = with_validation_data(token, crls=[crl])  # what is there already is kept

    assert _signed_parts(token) == _signed_parts(bare)
    carried = cms.ContentInfo.load(again.dump())["content"]["crls"]
    # a SET OF: DER orders it, so compare what is carried, not where
    crls = [c.chosen.dump() for c in carried if c.name == "crl"]
    others = [c.chosen["other_rev_info"].dump() for c in carried if c.name == "other"]
    assert (crls, others) == ([crl, crl], [status])
    TsaTrust([TSA.root])(token, AT)  # the CMS signature and the TSA path still hold
    record = new_record("sha256", tree.reduced(tree.root), token)
    verdict = validate_evidence(
        record.dump(),
        [DataObject(data=doc)],
        as_of=AT,
        check_timestamp=TsaTrust([TSA.root]),
        weak=WeakAlgorithms(),
    )
    assert verdict.ok, verdict
