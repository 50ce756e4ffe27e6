"""The ASN.1 of RFC 4998 against the DSS/BSI vectors: every record rebuilt from its parsed values
comes out byte for byte, and what is not a record is refused as malformed."""

from __future__ import annotations

from typing import Any

import pytest
from asn1crypto import cms

from archive.core.errors import EvidenceFormatError
from archive.evidence import asn1, read_record
from tests.support.evidence import VECTORS, vector_cases

RECORDS = sorted(
    {c["evidence_record"] for c in vector_cases() if c["expected"] != "structurally-invalid"}
)
NOT_RECORDS = sorted(
    {c["evidence_record"] for c in vector_cases() if c["expected"] == "structurally-invalid"}
)


def _rebuilt(parsed: asn1.EvidenceRecord) -> asn1.EvidenceRecord:
    """A new record from the parsed values: our types write every tag and length again; only
    the foreign leaves (AlgorithmIdentifier, Attribute, the CMS token) keep their own DER."""
    chains = []
    for chain in parsed["archive_time_stamp_sequence"]:
        stamps = []
        for ats in chain:
            fields: dict[str, Any] = {"time_stamp": cms.ContentInfo.load(ats["time_stamp"].dump())}
            if ats["digest_algorithm"].native is not None:
                fields["digest_algorithm"] = ats["digest_algorithm"].copy()
            if ats["attributes"].native is not None:
                fields["attributes"] = [a.copy() for a in ats["attributes"]]
            if ats["reduced_hashtree"].native is not None:
                fields["reduced_hashtree"] = ats["reduced_hashtree"].native
            stamps.append(asn1.ArchiveTimeStamp(fields))
        chains.append(stamps)
    fields = {
        "version": parsed["version"].native,
        "digest_algorithms": [a.copy() for a in parsed["digest_algorithms"]],
        "archive_time_stamp_sequence": chains,
    }
    if parsed["crypto_infos"].native is not None:
        fields["crypto_infos"] = [a.copy() for a in parsed["crypto_infos"]]
    if parsed["encryption_info"].native is not None:
        fields["encryption_info"] = parsed["encryption_info"].native
    return asn1.EvidenceRecord(fields)


@pytest.mark.parametrize("name", RECORDS)
def test_every_vector_record_is_rebuilt_byte_for_byte(name: str) -> None:
    der = (VECTORS / name).read_bytes()
    parsed = read_record(der).asn1
    assert _rebuilt(parsed).dump() == der


@pytest.mark.parametrize("name", NOT_RECORDS)
def test_what_dss_refuses_as_a_record_is_malformed(name: str) -> None:
    with pytest.raises(EvidenceFormatError):
        read_record((VECTORS / name).read_bytes())


def test_trailing_bytes_after_a_record_are_malformed() -> None:
    der = (VECTORS / "er-asn1-simple.ers").read_bytes()
    with pytest.raises(EvidenceFormatError):
        read_record(der + b"\x00")


def test_a_record_of_another_version_is_malformed() -> None:
    parsed = asn1.EvidenceRecord.load((VECTORS / "er-asn1-simple.ers").read_bytes())
    other = _rebuilt(parsed)
    other["version"] = 2
    with pytest.raises(EvidenceFormatError, match="version 2"):
        read_record(other.dump())


def test_the_er_attribute_oids_are_distinct() -> None:
    # pyasn1-alt-modules' rfc4998 assigns id-aa-er-internal twice and loses id-aa-er-external.
    assert asn1.ID_AA_ER_INTERNAL.endswith(".49")
    assert asn1.ID_AA_ER_EXTERNAL.endswith(".50")
