"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.core.settings import ArchiveSettings
from infra.ports import throwaway_settings
from infra.settings import AppSettings


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's EMR_ARCHIVE_* or AWS_* variables must not leak into tests.
    import os

    for name in list(os.environ):
        if name.startswith(("EMR_ARCHIVE_", "AWS_")):
            monkeypatch.delenv(name, raising=False)


def make_settings(data_dir: Path, **overrides: Any) -> AppSettings:
    # Tests write their exports to their own tmp_path, a sibling of the stack's data dir under
    # pytest's base temp: that is the tests' one source root (runs refuse any other source).
    overrides.setdefault("archive", ArchiveSettings(source_roots=(data_dir.parent,)))
    return throwaway_settings(data_dir, **overrides)


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
