"""Our validator against the DSS/BSI vectors and the verdicts their README derives from DSS.

The hash layer is judged exactly as DSS judges it. DSS runs these tests without trust anchors,
so "valid" asserts nothing about the foreign TSAs' roots; here each token is checked against
its own embedded signer certificate taken as the root (its CMS signature, its imprint), which
is what the README says every vector token passes. Trust in real TSAs is tested with our own
PKI (test_validate.py, the oracle integration test).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import cms
from pyhanko.sign.general import extract_certificate_info

from archive.evidence import (
    CHAIN_BROKEN,
    MALFORMED,
    NOT_COVERED,
    WEAK_ALGORITHM,
    DataObject,
    TsaTrust,
    WeakAlgorithms,
    hash_tree_renewal_leaf,
    read_record,
    timestamp_renewal_leaf,
    validate_evidence,
)
from tests.support.evidence import VECTORS, vector_cases, vector_objects

AS_OF = datetime(2026, 4, 15, tzinfo=UTC)
CASES = {c["id"]: c for c in vector_cases()}


def _own_signer(token: cms.ContentInfo, valid_at: datetime) -> None:
    """The token's signature against its own signer certificate, at its own time."""
    del valid_at  # foreign TSA certificates lapse; their validity is not what DSS asserts
    signer = extract_certificate_info(token["content"]).signer_cert
    info = token["content"]["encap_content_info"]["content"].parsed
    TsaTrust([signer])(token, info["gen_time"].native)


def _judge(case: dict[str, Any], objects: list[DataObject] | None = None) -> Any:
    der = (VECTORS / case["evidence_record"]).read_bytes()
    return validate_evidence(
        der,
        vector_objects(case) if objects is None else objects,
        as_of=AS_OF,
        check_timestamp=_own_signer,
        weak=WeakAlgorithms(),
    )


VALID = [i for i, c in CASES.items() if c["expected"] == "valid"]
INVALID = [i for i, c in CASES.items() if c["expected"] == "invalid"]
REFUSED = [i for i, c in CASES.items() if c["expected"] == "structurally-invalid"]


@pytest.mark.parametrize("case_id", VALID)
def test_a_valid_vector_is_valid(case_id: str) -> None:
    verdict = _judge(CASES[case_id])
    assert verdict.ok, verdict.detail
    first = read_record((VECTORS / CASES[case_id]["evidence_record"]).read_bytes()).chains[0][0]
    assert verdict.proven_at == first.gen_time


@pytest.mark.parametrize("case_id", INVALID)
def test_an_invalid_vector_is_invalid_for_its_reason(case_id: str) -> None:
    verdict = _judge(CASES[case_id])
    # Chain 1 of the chain-renewal vectors is an RSA-1024/MD5 test key: pyHanko refuses it as
    # weak, but the hash layer is checked first and breaks on the renewal link, as DSS says.
    assert verdict.code in {NOT_COVERED, CHAIN_BROKEN}, verdict.detail


@pytest.mark.parametrize("case_id", REFUSED)
def test_a_structurally_invalid_vector_is_malformed(case_id: str) -> None:
    assert _judge(CASES[case_id]).code == MALFORMED


@pytest.mark.parametrize("case_id", ["bin2", "bin3", "bin4"])
def test_unknown_bin_vectors_cover_their_namesake_file(case_id: str) -> None:
    """No DSS verdict: we assert what holds, that each ER covers the .bin of its name."""
    assert _judge(CASES[case_id]).ok


def test_the_governikus_vector_covers_the_crlf_original_not_the_lf_copy() -> None:
    case = CASES["bsi-governikus"]
    lf = (VECTORS / "bsi_gov_vte-lza_002.bin").read_bytes()
    assert _judge(case).code == NOT_COVERED
    crlf = lf.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert _judge(case, [DataObject(data=crlf)]).ok


def test_the_md5_signed_renewal_vectors_are_weak_once_their_links_are_not_checked() -> None:
    """The tokens DSS's test key signed (RSA-1024, MD5) are refused by the token check."""
    record = read_record((VECTORS / "er-asn1-chain-renewal-invalid.ers").read_bytes())
    with pytest.raises(Exception, match="CRYPTO_CONSTRAINTS") as caught:
        _own_signer(record.chains[0][0].token, AS_OF)
    assert getattr(caught.value, "code", None) == WEAK_ALGORITHM


def test_the_renewal_digests_dss_asserts() -> None:
    case = CASES["simple"]
    expected = case["renewal_digests"]
    record = read_record((VECTORS / case["evidence_record"]).read_bytes())
    assert timestamp_renewal_leaf(record).hex().upper() == expected["timestamp_renewal"]["sha512"]
    for algorithm, value in expected["hash_tree_renewal_for_data_1"].items():
        data = hashlib.new(algorithm, b"1").digest()
        leaf = hash_tree_renewal_leaf(record, len(record.chains), algorithm, data)
        assert leaf.hex().upper() == value


def test_a_renewal_chain_needs_the_data_in_its_own_algorithm() -> None:
    """LKSG_4 supplies only digests; without the SHA-384 one the renewal cannot be checked."""
    case = CASES["lksg-uncommon-chain-renewal"]
    [obj] = vector_objects(case)
    only_256 = DataObject(digests={"sha256": obj.digests["sha256"]})
    verdict = _judge(case, [only_256])
    assert verdict.code == NOT_COVERED
    assert "sha384" in verdict.detail
