"""The retention class of a QĐ 130 record comes from its XML1 codes, under the same policy file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from archive.sources import EncounterBundle, Window
from archive.sources.qd130 import collect
from retention.classifier import PolicyClassifier
from retention.policy import load_policy
from tests.support import qd130 as q

CASES = [
    ({}, "ordinary"),
    ({"KET_QUA_DTRI": "5"}, "death"),
    ({"KET_QUA_DTRI": "8"}, "death"),
    ({"MA_TAI_NAN": "1"}, "accident_traffic"),
    ({"MA_TAI_NAN": "2"}, "accident_work"),
    ({"MA_TAI_NAN": "6"}, "accident_other"),
    ({"MA_BENH_KT": "I10;F32.1"}, "mental"),
    ({"MA_BENH_CHINH": "F200"}, "mental"),  # dotless, as many HIS send it
    ({"MA_PTTT_QT": "55.69"}, "transplant_donor_recipient"),
    ({"MA_PTTT_QT": "2185"}, "cosmetic"),
    ({"MA_LOAI_KCB": "01", "MA_DOITUONG_KCB": "2"}, "ordinary"),
]


@pytest.mark.parametrize(("changes", "expected"), CASES, ids=[e for _, e in CASES])
def test_the_class_follows_the_xml1_codes(
    tmp_path: Path, changes: dict[str, str], expected: str
) -> None:
    (tmp_path / "day.xml").write_bytes(q.envelope(q.hoso({"XML1": q.xml1(**changes)})))
    [bundle] = collect(tmp_path, window=Window.for_day(date(2025, 3, 10)))
    assert isinstance(bundle, EncounterBundle)
    assert PolicyClassifier(load_policy(None)).decide(bundle).class_id == expected
