"""The portal's labels: both languages for every key, every key a template uses defined, and
the small pure helpers (language choice, local redirects)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from portal import i18n, local_path
from retrieval import Role

TEMPLATES = Path(str(resources.files("portal").joinpath("templates")))


def test_every_label_has_both_languages() -> None:
    for key, labels in i18n.LABELS.items():
        assert len(labels) == len(i18n.LANGUAGES), key
        assert all(label.strip() for label in labels), key


def test_every_label_a_template_names_is_defined() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.-]+)["']\s*\)""", template.read_text()))
    assert used, "no labels found: the pattern is wrong"
    assert used <= set(i18n.LABELS), sorted(used - set(i18n.LABELS))


@pytest.mark.parametrize(
    "key",
    [
        *(f"role.{r.value}" for r in Role),
        *(f"status.{s}" for s in ("passed", "failed", "indeterminate")),
        *(f"state.{s}" for s in ("active", "expired", "pending")),
        *(f"outcome.{o}" for o in ("success", "failure")),
        *(f"error.{c}" for c in (400, 401, 403, 404, 429, 500, 503)),
        "scope.facility",
        "scope.encounters",
        "scope.patient",
        "login.failed",
        "login.expired",
        "login.signed_out",
    ],
)
def test_labels_built_at_run_time_exist(key: str) -> None:
    assert key in i18n.LABELS


def test_vietnamese_is_the_default_and_the_cookie_wins() -> None:
    assert i18n.language(None, None) == "vi"
    assert i18n.language(None, "en-GB,en;q=0.9") == "en"
    assert i18n.language(None, "fr-FR,fr;q=0.9") == "vi"
    assert i18n.language("vi", "en-US") == "vi"
    assert i18n.language("xx", "en") == "en"  # a forged cookie is ignored
    assert i18n.translator("en")("nav.search") == "Search"
    assert i18n.translator("vi")("nav.search") == "Tra cứu"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/search", "/search"),
        ("/dossier/E1?x=1", "/dossier/E1?x=1"),
        (None, "/home"),
        ("", "/home"),
        ("//evil.example/x", "/home"),
        ("/\\evil.example", "/home"),
        ("https://evil.example/", "/home"),
        ("javascript:alert(1)", "/home"),
    ],
)
def test_redirect_targets_stay_on_this_site(candidate: str | None, expected: str) -> None:
    assert local_path(candidate, "/home") == expected
