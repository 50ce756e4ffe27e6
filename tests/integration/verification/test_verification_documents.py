"""Documents built to fool the verifier, checked as an inspector would: ``emr-archive verify-file``
and the per-document check functions.

These attacks cannot be written into the archive (its objects are create-once and locked), so
they are built here from a freshly signed document, with the builders in tests/support/attacks.py,
on the session stack's development PKI. Each must fail its signature check with the right reason
code and leave the checks it does not concern passing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import x509
from click.testing import CliRunner

from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig, load_trust_roots
from infra.cli.commands import verify_file_cmd
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.attacks import (
    Attack,
    add_page_content,
    edit_byte_range,
    replace_embedded_json,
    replace_page_content,
    sign_directly,
)
from tests.support.fhir import canonical, example_bundle
from verification.document import verify_document
from verification.results import CheckResult

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def attack(stack_settings: Settings) -> Attack:
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    bundle = example_bundle()
    created_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    document = Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf
    signer = DocumentSigner.create(SignerConfig.from_settings(stack_settings))
    [signed] = signer.sign_batch([document])
    assert isinstance(signed, SignedDocument), signed
    return Attack(pki=pki, document=document, signed=signed.pdf)


@pytest.fixture(scope="module")
def roots(stack_settings: Settings) -> list[x509.Certificate]:
    return load_trust_roots(SignerConfig.from_settings(stack_settings).trust_roots)


def _by_check(results: tuple[CheckResult, ...]) -> dict[str, str]:
    return {r.check: r.reason_code for r in results}


ALL_PASS = {"signature": "sig.ok", "pdfa": "pdfa.ok", "embedded-data": "embedded-data.ok"}

# attack -> (signature codes accepted, what the other checks must say)
ATTACKS: dict[str, tuple[Callable[[Attack], bytes], set[str], dict[str, str]]] = {
    "page content added by an incremental update": (
        add_page_content,
        {"sig.modified_after_signing"},
        {},
    ),
    "page content replaced by an incremental update": (
        replace_page_content,
        {"sig.modified_after_signing"},
        {},
    ),
    "embedded JSON replaced in a later revision": (
        replace_embedded_json,
        {"sig.modified_after_signing"},
        # the forged file no longer matches its /Params size and MD5: the same fact, seen twice
        {"pdfa": "pdfa.attachment", "embedded-data": "data.unusable"},
    ),
    "byte range leaving part of the file uncovered": (
        edit_byte_range,
        {"sig.digest_mismatch", "sig.coverage_gap"},
        {},
    ),
    "signed by a CA outside the trust roots": (
        lambda a: sign_directly(
            a, "untrusted-signer", timestamp=True, lta_trusting=a.pki.untrusted_root
        ),
        {"sig.untrusted_chain"},
        {},
    ),
    "signer certificate expired at signing time": (
        lambda a: sign_directly(a, "expired-signer", timestamp=True),
        {"sig.expired_at_signing"},
        {},
    ),
    "a signature without any timestamp": (
        lambda a: sign_directly(a, "hospital-signer", timestamp=False),
        {"sig.no_timestamp"},
        {},
    ),
}


def test_the_genuine_document_passes_every_check(
    attack: Attack, roots: list[x509.Certificate]
) -> None:
    results = verify_document(attack.signed, trust_roots=roots, now=datetime.now(UTC))
    assert _by_check(results) == ALL_PASS, results


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_check_functions_report_the_attack_and_nothing_else(
    name: str, attack: Attack, roots: list[x509.Certificate]
) -> None:
    build, signature_codes, others = ATTACKS[name]
    forged = build(attack)
    results = _by_check(verify_document(forged, trust_roots=roots, now=datetime.now(UTC)))
    assert results["signature"] in signature_codes, results
    assert {k: v for k, v in results.items() if k != "signature"} == {
        **{k: v for k, v in ALL_PASS.items() if k != "signature"},
        **others,
    }


@pytest.mark.parametrize("name", list(ATTACKS))
def test_verify_file_prints_the_reason_and_exits_non_zero(
    name: str, attack: Attack, stack_settings: Settings, tmp_path: Path
) -> None:
    build, signature_codes, _ = ATTACKS[name]
    path = tmp_path / "copy.pdf"
    path.write_bytes(build(attack))
    result = CliRunner().invoke(verify_file_cmd, [str(path)], obj=stack_settings)
    assert result.exit_code == 1, result.output
    assert any(code in result.output for code in signature_codes), result.output
    assert "copy.pdf: FAILED" in result.output


def test_verify_file_passes_the_genuine_document(
    attack: Attack, stack_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "genuine.pdf"
    path.write_bytes(attack.signed)
    result = CliRunner().invoke(verify_file_cmd, [str(path)], obj=stack_settings)
    assert result.exit_code == 0, result.output
    assert "genuine.pdf: PASSED" in result.output
    assert "sig.ok" in result.output
