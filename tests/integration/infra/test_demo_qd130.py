"""`make demo` step 4b on the real stack: the QĐ 130 day's single-HOSO files are signed by a
development facility whose certificate the demo configures for its run, so one record shows
``facility_signature=valid`` with the signer's SHA-256, and the planted file changed after
signing is quarantined ``facility-signature-invalid``."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from archive.core.timezones import zone
from infra.demo_sources import FACILITY_CERTS_ENV, show_qd130
from infra.sample.qd130_signing import dev_facility
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


def test_the_demo_shows_a_valid_facility_signature_and_quarantines_a_broken_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows import nightly

    def current() -> Settings:
        """The flow's settings as the environment gives them when the flow starts: the stack of
        this test, and the facility certificates the demo sets for its run (or none)."""
        certs = os.environ.get(FACILITY_CERTS_ENV)
        archive = settings.archive.model_copy(
            update={"facility_certs": Path(certs) if certs else None}
        )
        return settings.model_copy(update={"archive": archive})

    monkeypatch.setattr(nightly, "load_settings", current)
    monkeypatch.delenv(FACILITY_CERTS_ENV, raising=False)
    tz = settings.archive.timezone
    yesterday = datetime.now(zone(tz)).date() - timedelta(days=1)

    result = show_qd130(settings, yesterday, encounters=12)

    out = capsys.readouterr().out
    facility = dev_facility(settings.data_dir / "qd130-dev-facility")  # the one the demo made
    assert (
        f"facility_signature=valid (CHUKYDONVI), signer certificate SHA-256 {facility.sha256}"
        in out
    )
    assert (
        "HOSO_bad_signature.xml, changed after the facility signed it: quarantined "
        "facility-signature-invalid (file)" in out
    )
    assert result["quarantined"]["facility-signature-invalid"] == 1
    assert FACILITY_CERTS_ENV not in os.environ  # set for the demo's run only
