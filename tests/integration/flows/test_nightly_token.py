"""The nightly archive and verification with the hospital's key on a PKCS#11 token (SoftHSM2),
signed in two worker processes, each with its own session; and the token pulled out mid-run.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.pipeline import ArchiveRun, RunOptions
from archive.store import S3ObjectStore
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from retention.classifier import PolicyClassifier
from tests.support.nightly import Export, make_export, record_versions, run_once
from tests.support.softhsm import SoftToken, settings_on_token, signer_on_token, token_dir
from verification.config import VerificationSettings
from verification.results import Status
from verification.run import RunPlan, VerificationRun
from verification.select import Mode, Selection


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return make_export(tmp_path_factory.mktemp("token-export"), encounters=24, seed=31)


def _on_token(settings: Settings, token: SoftToken) -> Settings:
    return settings_on_token(settings, token, workers=2)


def _token(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> SoftToken:
    pki = DevPki(settings.pki_dir, settings.stack.pki_port)
    token, _ = signer_on_token(tmp_path_factory, pki.signer)
    return token


def test_the_nightly_run_signs_on_the_token_and_verification_passes(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, export: Export, tmp_path: Path
) -> None:
    on_token = _on_token(settings, _token(tmp_path_factory, settings))
    summary = run_once(on_token, export)
    assert summary.archived == len(export.summary.in_window)
    assert summary.failed == {}
    vsettings = VerificationSettings(output_dir=tmp_path / "verification", workers=1)
    plan = RunPlan.create(on_token, vsettings, selection=Selection(mode=Mode.FULL), now=_now())
    with VerificationRun.start(on_token, vsettings, plan) as run:
        for batch in run.batches():
            run.verify_batch(batch)
        report = run.finish()
    assert report.status is Status.PASSED, report.failure_message
    assert report.selected == summary.archived


def test_a_token_pulled_out_mid_run_leaves_the_rest_for_the_next_run_and_stores_nothing_unsigned(
    tmp_path_factory: pytest.TempPathFactory, settings: Settings, export: Export
) -> None:
    token = _token(tmp_path_factory, settings)
    on_token = _on_token(settings, token)
    options = RunOptions.create(
        on_token, window=export.window, source=export.path, now=_now(), batch_size=6
    )
    classifier = PolicyClassifier.from_settings(on_token)
    with ArchiveRun.start(on_token, options, classifier=classifier) as run:
        for i, batch in enumerate(run.batches()):
            run.archive_batch(batch)
            if i == 0:
                shutil.rmtree(token_dir(token))  # the USB token is pulled out
        run.store_quarantine()
        summary = run.finish()
    assert 0 < summary.archived < len(export.summary.in_window)
    assert set(summary.failed) == {"sign.token_unavailable"}
    assert summary.failure_message is not None
    assert "sign.token_unavailable" in summary.failure_message
    store = S3ObjectStore.from_settings(on_token)
    assert len(list(record_versions(store))) == summary.archived  # nothing unsigned stored
    assert len(Catalog.open(on_token.catalog_dir).rows()) == summary.archived


def _now() -> datetime:
    return datetime.now(UTC)
