"""The facility's XML signature (``CHUKYDONVI``): attacks on it are refused, the result is kept.

Each attack test changes or re-signs a file so that a careless verifier would accept it: a
signature over one element wrapped around a forged one (XSW), a signature over another part of
the file, one copied from another file, one by a key that is not the facility's. The development
facility's key is generated into the test's tmp dir (:mod:`infra.sample.qd130_signing`).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from signxml.verifier import SignatureConfiguration, XMLVerifier

from archive.sources import (
    EncounterBundle,
    QuarantineEntry,
    QuarantineReason,
    QuarantineScope,
    Window,
)
from archive.sources.qd130 import Limits, collect
from archive.sources.qd130.hardening import XmlRefusedError
from archive.sources.qd130.signature import FacilityTrust, load_facility_trust, verify_file
from infra.sample.qd130_signing import DevFacility, dev_facility, sign_file
from tests.support import qd130 as q

R = QuarantineReason
WINDOW = Window.for_day(date(2025, 3, 10))
LIMIT = 1 << 20


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> DevFacility:
    return dev_facility(tmp_path_factory.mktemp("facility"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> DevFacility:
    return dev_facility(tmp_path_factory.mktemp("stranger"), name="Somebody else")


@pytest.fixture(scope="module")
def trust(facility: DevFacility) -> FacilityTrust:
    return FacilityTrust.of([facility.cert])


def _file(*keys: str) -> bytes:
    return q.envelope(*(q.hoso({"XML1": q.xml1(MA_LK=k)}) for k in keys or ("LK0001",)))


def _invalid(data: bytes, trust: FacilityTrust, match: str) -> None:
    with pytest.raises(XmlRefusedError, match=match) as info:
        verify_file(data, trust, max_bytes=LIMIT)
    assert info.value.reason is R.FACILITY_SIGNATURE_INVALID


def test_a_whole_file_signature_by_the_facility_is_valid(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    result = verify_file(sign_file(_file(), facility), trust, max_bytes=LIMIT)
    assert result.status == "valid"
    assert result.signer_sha256 == facility.sha256
    assert result.signer_subject is not None
    assert "Bệnh viện Mẫu (dev)" in result.signer_subject


def test_an_empty_chukydonvi_is_absent(trust: FacilityTrust) -> None:
    result = verify_file(_file(), trust, max_bytes=LIMIT)
    assert (result.status, result.signer_sha256) == ("absent", None)


def test_xsw_a_signature_over_one_element_wrapped_around_a_forgery(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    original = _file("LK0001").replace(b"<HOSO>", b'<HOSO Id="h1">', 1)
    signed = sign_file(original, facility, reference_uri="#h1")
    genuine = re.search(rb'<HOSO Id="h1">.*?</HOSO>', signed, re.S)
    assert genuine is not None
    forged = q.hoso({"XML1": q.xml1(MA_LK="LK0001", KET_QUA_DTRI="5")})
    # the signed HOSO hidden beside the signature, a forged one where the reader looks
    wrapped = signed.replace(genuine.group(0), forged, 1).replace(
        b"<CHUKYDONVI>", b"<CHUKYDONVI>" + genuine.group(0), 1
    )
    # what makes the attack real: a verifier that trusts any reference accepts it
    config = SignatureConfiguration(location="./CHUKYDONVI/")
    assert XMLVerifier().verify(wrapped, x509_cert=facility.cert, expect_config=config)
    _invalid(wrapped, trust, "whole file")
    _invalid(signed, trust, "whole file")  # even unwrapped: one HOSO signed is not the file


def test_xsw_a_signed_file_with_a_hoso_duplicated_or_moved(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    signed = sign_file(_file("LK0001", "LK0002"), facility)
    first = re.search(rb"<HOSO>.*?</HOSO>", signed, re.S)
    assert first is not None
    duplicated = signed.replace(first.group(0), first.group(0) * 2, 1).replace(
        b"<SOLUONGHOSO>2<", b"<SOLUONGHOSO>3<", 1
    )
    _invalid(duplicated, trust, "does not verify")
    moved = signed.replace(first.group(0), b"", 1).replace(
        b"</ds:Signature>", b"<ds:Object>" + first.group(0) + b"</ds:Object></ds:Signature>", 1
    )
    _invalid(moved, trust, "does not verify")


def test_a_signature_over_a_different_reference(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    tagged = _file().replace(b"<THONGTINDONVI>", b'<THONGTINDONVI Id="unit">', 1)
    _invalid(sign_file(tagged, facility, reference_uri="#unit"), trust, "whole file")
    # a valid signature copied from another file of the same facility
    donor = sign_file(_file("LK0099"), facility)
    signature = re.search(rb"<ds:Signature.*</ds:Signature>", donor, re.S)
    assert signature is not None
    transplanted = _file("LK0001").replace(
        b"<CHUKYDONVI></CHUKYDONVI>", b"<CHUKYDONVI>" + signature.group(0) + b"</CHUKYDONVI>"
    )
    _invalid(transplanted, trust, "does not verify")


def test_a_key_that_is_not_the_facilitys(
    facility: DevFacility, stranger: DevFacility, trust: FacilityTrust
) -> None:
    signed = sign_file(_file(), stranger)
    _invalid(signed, trust, "not among the facility certificates")
    # the stranger's certificate in KeyInfo, but the facility's key does not match it
    swapped = re.sub(
        rb"<ds:X509Certificate>.*?</ds:X509Certificate>",
        b"<ds:X509Certificate>" + _b64_cert(facility) + b"</ds:X509Certificate>",
        signed,
        flags=re.S,
    )
    _invalid(swapped, trust, "does not verify")
    # without configured certificates the signature is checked for integrity only
    untrusted = verify_file(signed, FacilityTrust.of([]), max_bytes=LIMIT)
    assert untrusted.status == "unverified"
    assert untrusted.signer_sha256 == stranger.sha256
    assert "no facility certificate" in untrusted.detail
    broken = signed.replace(b"<MACSKCB>17001<", b"<MACSKCB>17002<", 1)
    _invalid(broken, FacilityTrust.of([]), "does not verify")


def test_a_second_signature_or_garbage_in_chukydonvi(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    signed = sign_file(_file(), facility)
    signature = re.search(rb"<ds:Signature.*</ds:Signature>", signed, re.S)
    assert signature is not None
    twice = signed.replace(b"</THONGTINHOSO>", b"</THONGTINHOSO>" + signature.group(0), 1)
    _invalid(twice, trust, "exactly one")
    garbage = _file().replace(b"<CHUKYDONVI></CHUKYDONVI>", b"<CHUKYDONVI>MIIB...</CHUKYDONVI>")
    _invalid(garbage, trust, "no XML signature")


def test_a_file_over_the_limit_is_recorded_unverified(
    facility: DevFacility, trust: FacilityTrust
) -> None:
    signed = sign_file(_file(), facility)
    result = verify_file(signed, trust, max_bytes=len(signed) - 1)
    assert result.status == "unverified"
    assert "larger than" in result.detail
    assert result.signer_sha256 is None


def test_the_trusted_certificates_come_from_a_pem_file(
    facility: DevFacility, stranger: DevFacility, tmp_path: Path
) -> None:
    pem = tmp_path / "facilities.pem"
    pem.write_bytes(facility.cert_pem + stranger.cert_pem)
    assert load_facility_trust(pem).sha256s == {facility.sha256, stranger.sha256}
    pem.write_bytes(b"not a certificate")
    with pytest.raises(ValueError, match="no PEM certificate"):
        load_facility_trust(pem)


def test_collect_keeps_the_result_and_quarantines_an_invalid_file(
    facility: DevFacility, stranger: DevFacility, trust: FacilityTrust, tmp_path: Path
) -> None:
    (tmp_path / "a_signed.xml").write_bytes(sign_file(_file("LK0001"), facility))
    (tmp_path / "b_plain.xml").write_bytes(_file("LK0002"))
    (tmp_path / "c_forged.xml").write_bytes(
        sign_file(_file("LK0003"), facility).replace(b"<MACSKCB>17001<", b"<MACSKCB>17002<")
    )
    (tmp_path / "d_stranger.xml").write_bytes(sign_file(_file("LK0004"), stranger))
    items = list(collect(tmp_path, window=WINDOW, trust=trust, limits=_limits()))
    bundles = {i.encounter_id: i for i in items if isinstance(i, EncounterBundle)}
    entries = [i for i in items if isinstance(i, QuarantineEntry)]
    assert sorted(bundles) == ["LK0001", "LK0002"]
    signed = bundles["LK0001"].facility_signature
    assert signed is not None
    assert (signed.status, signed.signer_sha256) == ("valid", facility.sha256)
    plain = bundles["LK0002"].facility_signature
    assert plain is not None
    assert plain.status == "absent"
    assert sorted((e.source_file, e.scope, e.reason) for e in entries) == [
        ("c_forged.xml", QuarantineScope.FILE, R.FACILITY_SIGNATURE_INVALID),
        ("d_stranger.xml", QuarantineScope.FILE, R.FACILITY_SIGNATURE_INVALID),
    ]
    assert all("LK000" not in e.detail for e in entries)  # no episode key, no PHI in details


def _limits() -> Limits:
    return Limits(
        max_hoso_bytes=1 << 20,
        max_table_bytes=256 << 10,
        max_text_chars=64 << 10,
        max_signed_file_bytes=LIMIT,
    )


def _b64_cert(facility: DevFacility) -> bytes:
    pem = facility.cert_pem.decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return body.encode()
