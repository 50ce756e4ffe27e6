"""The layout rules of ARCHITECTURE.md that no linter checks: module size, the formatter left on,
and tests that share helpers through tests/support rather than through each other."""

from __future__ import annotations

import re
import subprocess

from tests.support.paths import REPO

MAX_LINES = 400


def _tracked(pattern: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", pattern], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_no_product_module_is_over_400_lines() -> None:
    sizes = {
        path: len((REPO / path).read_text(encoding="utf-8").splitlines())
        for path in _tracked("*.py")
        if not path.startswith("tests/")
    }
    assert sizes, "no modules found"
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_the_formatter_is_not_switched_off() -> None:
    marker = re.compile(r"#\s*fmt:\s*(skip|off)")
    hits = [
        f"{path}:{i}"
        for path in _tracked("*.py")
        for i, line in enumerate((REPO / path).read_text(encoding="utf-8").splitlines(), 1)
        if marker.search(line)
    ]
    assert len(hits) < 40, hits


def test_no_test_module_imports_another_test_module() -> None:
    # Helpers shared by tests live in tests/support; conftest fixtures are injected, not imported.
    imports = re.compile(r"^\s*(from|import)\s+tests\.(unit|integration|conftest)\b", re.M)
    offenders = [
        path
        for path in _tracked("tests/*.py")
        if imports.search((REPO / path).read_text(encoding="utf-8"))
    ]
    assert offenders == []
