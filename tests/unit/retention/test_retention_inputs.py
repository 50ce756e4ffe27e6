"""Inputs of the retention commands are checked before anything is touched: facts files, hold
selections, and proposals that must read back exactly as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retention.candidates import Item
from retention.disposition import Proposal
from retention.errors import RetentionError
from retention.holds import HoldScope
from retention.upgrades import load_facts_file


def test_a_facts_file_with_an_unknown_fact_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"E1": {"deceased": True, "died": True}}))
    with pytest.raises(RetentionError, match=r"E1 has unknown fact\(s\) \['died'\]"):
        load_facts_file(path)


@pytest.mark.parametrize("content", ["[1, 2]", '{"E1": true}', "not json"])
def test_a_malformed_facts_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text(content)
    with pytest.raises(RetentionError, match="facts"):
        load_facts_file(path)


def test_a_facts_file_reads_codes_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"E1": {"icd10_codes": ["F32.1"], "treatment_result": "5"}}))
    assert load_facts_file(path) == {"E1": {"icd10_codes": ["F32.1"], "treatment_result": "5"}}


def test_a_hold_selects_by_exactly_one_criterion() -> None:
    with pytest.raises(RetentionError, match="exactly one"):
        HoldScope()
    with pytest.raises(RetentionError, match="--from and --to"):
        HoldScope(facility="01001")


def test_a_patient_hold_keeps_only_the_pseudonym() -> None:
    class Keys:
        def pseudonym(self, patient_id: str) -> str:
            return "p1_" + "7" * 64

        def record_token(self, record_id: str) -> str:
            return "r1_" + "7" * 38

    scope = HoldScope.for_patient("BN-123", Keys())
    assert "BN-123" not in json.dumps(scope.to_json())
    assert scope.to_json() == {"patient_pseudonym": "p1_" + "7" * 64}


def test_a_proposal_reads_back_exactly() -> None:
    item = Item(
        encounter_id="E1",
        patient_pseudonym="p1_" + "1" * 64,
        facility="01001",
        retention_class="ordinary",
        discharged_at="2014-05-01T03:00:00+00:00",
        retain_until="2024-12-31T17:00:00+00:00",
        object_key="records/v1/01001/aa/r1",
        versions=("v1", "v2"),
        pdf_sha256="a" * 64,
        sealed_sha256="b" * 64,
    )
    proposal = Proposal(
        proposal_id="disp-1",
        proposed_by="lan",
        proposed_at="2026-11-23",
        policy_ref="vn-tt33-2025@1",
        items=(item,),
        excluded={"on hold": 2},
    )
    assert Proposal.decode(proposal.encode()) == proposal
    assert json.loads(proposal.encode())["totals"] == {"ordinary": 1}
