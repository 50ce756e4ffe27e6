"""Hostile structures the signature check must name, not merely survive: a page tree that runs in
a circle and a signature whose /SubFilter no standard defines.

A page tree whose /Kids names an ancestor, or whose /Parent chain loops, sends a reader that
trusts the tree into endless recursion (pyHanko's incremental-update analysis walks it); a
/SubFilter nobody knows leaves a validator guessing which format the CMS follows. Each must be a
failure with a precise reason code, one line from ``verify-file``, no traceback, and the PDF/A
and data checks must come back (not hang or blow the stack) on the same file. Built from a
freshly signed record with tests/support/attacks.py, on the session stack's development PKI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.render import Renderer, check_pdfa3b
from archive.sign import DocumentSigner, SignedDocument, SignerConfig, validate_pdf_signatures
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.attacks import (
    Attack,
    page_tree_kids_cycle,
    page_tree_parent_loop,
    unknown_subfilter,
)
from tests.support.fhir import canonical, example_bundle
from tests.support.trust import dev_trust
from verification.document import verify_document

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def attack(stack_settings: Settings) -> Attack:
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    bundle = example_bundle()
    created_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    document = Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf
    [signed] = DocumentSigner.create(SignerConfig.from_settings(stack_settings)).sign_batch(
        [document]
    )
    assert isinstance(signed, SignedDocument), signed
    return Attack(pki=pki, document=document, signed=signed.pdf)


# A rendered record, not a scan: the conversion-mark check passes it as born digital.
BORN_DIGITAL = {"conversion-mark": "conversion-mark.ok"}

# attack -> (the signature's reason code, what the PDF/A and data checks must say)
ATTACKS: dict[str, tuple[Callable[[Attack], bytes], str, dict[str, str]]] = {
    "a /Pages node whose /Kids names its parent": (
        page_tree_kids_cycle,
        "sig.malformed",
        {"pdfa": "pdfa.page-tree", "embedded-data": "embedded-data.ok", **BORN_DIGITAL},
    ),
    "a page tree whose /Parent chain loops": (
        page_tree_parent_loop,
        "sig.malformed",
        {"pdfa": "pdfa.page-tree", "embedded-data": "embedded-data.ok", **BORN_DIGITAL},
    ),
    "a /SubFilter no standard defines": (
        unknown_subfilter,
        "sig.unknown_subfilter",
        {"pdfa": "pdfa.ok", "embedded-data": "embedded-data.ok", **BORN_DIGITAL},
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_verify_document_names_the_hostile_structure(name: str, attack: Attack) -> None:
    build, code, others = ATTACKS[name]
    trust = dev_trust(attack.pki)
    results = {r.check: r for r in verify_document(build(attack), trust=trust, now=_now())}
    signature = results.pop("signature")
    assert (signature.reason_code, signature.status.value) == (code, "failed"), signature
    assert "Error" not in signature.message  # a sentence, not an exception's name
    assert {check: r.reason_code for check, r in results.items()} == others


@pytest.mark.parametrize("name", list(ATTACKS))
def test_verify_file_prints_one_verdict_and_no_traceback(
    name: str, attack: Attack, stack_settings: Settings, tmp_path: Path
) -> None:
    build, code, _ = ATTACKS[name]
    path = tmp_path / "copy.pdf"
    path.write_bytes(build(attack))
    result = _verify_file(stack_settings, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert [line for line in lines if "copy.pdf:" in line] == ["copy.pdf: FAILED"]
    [signature] = [line for line in lines if line.split()[1:2] == ["signature"]]
    assert signature.split()[:3] == ["FAIL", "signature", code], signature
    assert "Traceback" not in result.stdout


def test_the_page_tree_cycle_needs_no_signature_to_be_refused(attack: Attack) -> None:
    """The PDF/A check runs on any input (the renderer's output, a file handed in): a cyclic
    page tree is its finding too, without recursion running out of stack."""
    report = check_pdfa3b(page_tree_kids_cycle(attack))
    assert not report.passed
    assert [c.name for c in report.failures][:1] == ["page-tree"]


def test_the_genuine_record_still_passes(attack: Attack) -> None:
    report = validate_pdf_signatures(attack.signed, trust=dev_trust(attack.pki), now=_now())
    assert report.passed, report.reason


def _now() -> datetime:
    return datetime.now(UTC)


def _verify_file(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    """``emr-archive verify-file`` as an inspector runs it: its own process, its own stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env["EMR_ARCHIVE_DATA_DIR"] = str(settings.data_dir)
    for name, value in settings.stack.model_dump().items():
        env[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    command = [sys.executable, "-m", "infra.cli", "verify-file", str(path)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_page_tree_cycle_under_the_signature_itself_is_malformed(
    attack: Attack, stack_settings: Settings
) -> None:
    """The cycle in the signed revision, no later change for the diff analysis to find: signed
    by the hospital's own signing stage (an insider's, or a renderer bug's, document)."""
    cyclic = page_tree_kids_cycle(Attack(attack.pki, attack.document, attack.document))
    signer = DocumentSigner.create(SignerConfig.from_settings(stack_settings))
    [signed] = signer.sign_batch([cyclic])
    assert isinstance(signed, SignedDocument), signed
    report = validate_pdf_signatures(signed.pdf, trust=dev_trust(attack.pki), now=_now())
    assert (report.passed, report.reason_code) == (False, "sig.malformed"), report.reason
    assert "page tree" in report.reason
