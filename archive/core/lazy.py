"""Package exports loaded on first use (PEP 562), for packages whose names are wanted cheaply.

Every CLI command reads the settings and the error classes; a package ``__init__`` that eagerly
imported its whole public API would make each of them pay for pyHanko, FastAPI or the verifier
(a second or more) before doing anything. Such a package lists its names in ``__all__``, imports
them under ``TYPE_CHECKING`` for the type checker, and lets this module's ``__getattr__`` find
each at run time in its submodules, cheapest first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence


def lazy_exports(
    package: str, exported: Sequence[str], submodules: Sequence[str]
) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package``: an exported name comes from the first of
    ``submodules`` (searched in that order) that defines it, and is then cached in the package
    so the next lookup is a plain attribute."""
    names = frozenset(exported)

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's required name
        if name in names:
            for submodule in submodules:
                module = importlib.import_module(f"{package}.{submodule}")
                if hasattr(module, name):
                    value = getattr(module, name)
                    setattr(importlib.import_module(package), name, value)
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
