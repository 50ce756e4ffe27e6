"""Every name a package exports resolves, to an object of that package (the lazy loaders of
portal, retrieval and verification keep their own lists, which nothing else would check)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "archive.sources",
    "archive.render",
    "archive.sign",
    "archive.evidence",
    "archive.seal",
    "archive.store",
    "archive.catalog",
    "archive.audit",
    "archive.pipeline",
    "retention",
    "verification",
    "retrieval",
    "portal",
    "infra.sample",
    "infra.cli",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_to_the_package_s_own_object(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert exported, f"{package} exports nothing"
    top = package.split(".")[0]
    for name in exported:
        value = getattr(module, name)
        home = getattr(value, "__module__", None)
        if isinstance(home, str) and (inspect.isclass(value) or inspect.isfunction(value)):
            # Re-exports of another package's names (e.g. errors from archive.core) are fine
            # as long as they are ours; a foreign library's object would be a mistake.
            assert home.split(".")[0] in {top, "archive"}, f"{package}.{name} comes from {home}"


def test_an_unknown_name_is_an_attribute_error() -> None:
    for package in ("verification", "retrieval", "portal"):
        with pytest.raises(AttributeError):
            _ = importlib.import_module(package).no_such_name
