"""The portal in a real browser: Debian's headless Chromium driven by Playwright, against the
portal served by uvicorn on loopback, on the real stack.

A records officer grants an inspector access to one facility; the inspector signs in, finds a
dossier, opens it and exports it (the download is a valid BagIt bag whose PDF is byte-identical
to the signed one); a second inspector without a grant is refused; an auditor sees both in the
audit log. Screenshots land in ``var/screenshots/portal/`` of the repository for people to look at.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from infra.settings import AppSettings as Settings
from portal import create_app, in_thread
from retrieval import validate_zip
from tests.support.paths import REPO
from tests.support.portal import PASSWORD, ArchivedSite, archived_site

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it
SHOTS = REPO / "var" / "screenshots" / "portal"
# As root Chromium needs --no-sandbox; the rest keep it off the (closed) network at start-up.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> ArchivedSite:
    return archived_site(stack_settings, tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def base_url(site: ArchivedSite) -> Iterator[str]:
    with in_thread(create_app(site.settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Browser]:
    # After the archive and the server: Playwright's sync API keeps an event loop running on
    # this thread, and the archive run (asyncio.run inside the signer) must not see one.
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make test` (it installs it)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        b.close()


def sign_in(browser: Browser, base_url: str, user: str, *, lang: str = "en") -> Page:
    page = browser.new_context(accept_downloads=True, locale=lang).new_page()
    page.goto(f"{base_url}/lang/{lang}?next=/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_load_state()
    if not page.is_visible("#signed-in"):
        page.screenshot(path=SHOTS / f"failed-sign-in-{user}.png", full_page=True)
        pytest.fail(f"{user} is not signed in: {page.url} {page.inner_text('main')[:300]}")
    return page


def test_officer_grants_inspector_finds_and_exports_other_refused(
    browser: Browser, base_url: str, site: ArchivedSite, tmp_path: Path
) -> None:
    row = site.rows[0]
    eid = row["encounter_id"]

    officer = sign_in(browser, base_url, "ro.binh", lang="vi")
    officer.goto(f"{base_url}/grants")
    officer.select_option("#grant-inspector", "insp.an")
    officer.fill("#grant-case", "QĐ 12/QĐ-TTra")
    officer.fill("#grant-facility", row["facility"])
    officer.fill("#grant-days", "7")
    officer.click("#grant-submit")
    assert officer.is_visible("#grant-issued")
    officer.screenshot(path=SHOTS / "1-officer-issues-grant.png", full_page=True)

    inspector = sign_in(browser, base_url, "insp.an")
    assert "QĐ 12/QĐ-TTra" in inspector.inner_text("#my-grants")
    inspector.fill("#encounter", eid)
    inspector.click("#search")
    inspector.wait_for_selector("#hits")
    inspector.screenshot(path=SHOTS / "2-inspector-search.png", full_page=True)
    inspector.click(f"a.encounter:text('{eid}')")
    assert inspector.inner_text("#dossier-id") == eid
    inspector.screenshot(path=SHOTS / "3-inspector-dossier.png", full_page=True)
    with inspector.expect_download() as info:
        inspector.click("#export")
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name.startswith(f"dossier-encounter-{eid}")
    validate_zip(saved)
    with zipfile.ZipFile(saved) as z:
        pdf = next(n for n in z.namelist() if n.endswith(f"{eid}/discharge-summary.pdf"))
        assert hashlib.sha256(z.read(pdf)).hexdigest() == row["pdf_sha256"]

    other = sign_in(browser, base_url, "insp.khac")
    other.fill("#encounter", eid)
    other.click("#search")
    other.wait_for_selector("#error-title")
    assert "403" in other.inner_text("#error-title")
    assert "no active grant" in other.inner_text("#error-detail")
    other.screenshot(path=SHOTS / "4-second-inspector-refused.png", full_page=True)
    response = other.goto(f"{base_url}/dossier/{eid}")
    assert response is not None
    assert response.status == 403

    auditor = sign_in(browser, base_url, "audit.lan")
    auditor.fill("#audit-actor", "insp.khac")
    auditor.fill("#audit-action", "retrieval")
    auditor.click("#audit-filter")
    table = auditor.inner_text("#audit")
    assert "retrieval.search" in table
    assert "retrieval.view" in table
    auditor.screenshot(path=SHOTS / "5-auditor-sees-refusals.png", full_page=True)
    auditor.fill("#audit-actor", "insp.an")
    auditor.click("#audit-filter")
    assert "retrieval.export" in auditor.inner_text("#audit")


def test_signing_out_ends_the_session(browser: Browser, base_url: str) -> None:
    page = sign_in(browser, base_url, "insp.an")
    page.click("#sign-out")
    assert page.is_visible("#login-message")
    page.goto(f"{base_url}/search")
    assert page.url.startswith(f"{base_url}/login")  # back at sign-in, not on the search page
