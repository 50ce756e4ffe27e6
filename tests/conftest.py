"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.core.settings import StackSettings
from infra.settings import AppSettings, load_app_settings
from tests.support.ports import free_port_block


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's EMR_ARCHIVE_* or AWS_* variables must not leak into tests.
    import os

    for name in list(os.environ):
        if name.startswith(("EMR_ARCHIVE_", "AWS_")):
            monkeypatch.delenv(name, raising=False)


def make_settings(data_dir: Path, **overrides: object) -> AppSettings:
    s3_port, master, volume, filer, admin, pki_port = free_port_block(6)
    stack = StackSettings(
        s3_port=s3_port,
        master_port=master,
        volume_port=volume,
        filer_port=filer,
        admin_port=admin,
        pki_port=pki_port,
        # Tests run flows in Prefect's ephemeral mode; the server costs ~20 s to start.
        prefect_server=False,
    )
    return load_app_settings(data_dir=data_dir, stack=stack, **overrides)


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppSettings]:
    """The whole embedded stack (keyring, dev PKI + TSA service, SeaweedFS), once per session."""
    from infra import stack

    settings = make_settings(tmp_path_factory.mktemp("stack"))
    try:
        stack.up(settings)
        yield settings
    finally:
        stack.down(settings)
