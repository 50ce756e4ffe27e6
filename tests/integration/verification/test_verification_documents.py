"""Documents built to fool the verifier, checked as an inspector would: ``emr-archive verify-file``
and the per-document check functions.

These attacks cannot be written into the archive (its objects are create-once and locked), so
they are built here from a freshly signed document, with the builders in tests/support/attacks.py,
on the session stack's development PKI. Each must fail its signature check with the right reason
code and leave the checks it does not concern passing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.core.settings import SignerSettings
from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig, TrustPolicy
from infra.cli.commands import verify_file_cmd
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.attacks import (
    Attack,
    add_page_content,
    break_startxref,
    copy_foreign_timestamp,
    double_signer_info,
    duplicate_document_timestamp,
    edit_byte_range,
    empty_cms,
    foreign_cms,
    loop_xref,
    overlap_byte_range,
    replace_embedded_json,
    replace_page_content,
    shadow_replace_pages,
    sign_directly,
)
from tests.support.fhir import canonical, example_bundle
from tests.support.trust import dev_trust
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


# The attacks that sign with a misfit certificate stand for the hospital's own key gone wrong
# (expired, from a CA not trusted): accepted as the hospital's, to reach those verdicts. A
# certificate that is not the hospital's at all is tests/.../test_signer_pinning.py's subject.
MISFITS = ("expired-signer", "untrusted-signer")


@pytest.fixture(scope="module")
def trust(attack: Attack) -> TrustPolicy:
    return dev_trust(attack.pki, *MISFITS)


@pytest.fixture(scope="module")
def inspector(stack_settings: Settings, attack: Attack) -> Settings:
    """``verify-file``'s settings: the misfits pinned as past keys, by certificate file."""
    pinned = tuple(str(attack.pki.cert_path(label)) for label in MISFITS)
    signer = SignerSettings(**{**stack_settings.signer.model_dump(), "pinned_signers": pinned})
    return stack_settings.model_copy(update={"signer": signer})


def _by_check(results: tuple[CheckResult, ...]) -> dict[str, str]:
    return {r.check: r.reason_code for r in results}


def _copied_timestamp(attack: Attack) -> bytes:
    other = sign_directly(
        attack, "hospital-signer", timestamp=True, lta_trusting=attack.pki.trust_root
    )
    return copy_foreign_timestamp(attack, other)


ALL_PASS = {
    "signature": "sig.ok",
    "pdfa": "pdfa.ok",
    "embedded-data": "embedded-data.ok",
    "conversion-mark": "conversion-mark.ok",
}

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
        {
            "pdfa": "pdfa.attachment",
            "embedded-data": "data.unusable",
            "conversion-mark": "mark.unknown_kind",
        },
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
    # Hostile structure: each a failure with its own reason, never the indeterminate sig.error.
    "shadow attack: a page tree of its own in a later revision": (
        shadow_replace_pages,
        {"sig.modified_after_signing"},
        {},
    ),
    "byte ranges overlapping": (overlap_byte_range, {"sig.byterange_overlap"}, {}),
    "document timestamp duplicated into a second field": (
        duplicate_document_timestamp,
        {"sig.timestamp_duplicated"},
        {},
    ),
    "document timestamp copied from another document": (
        _copied_timestamp,
        {"sig.digest_mismatch"},
        {},
    ),
    # the PDF/A and data checks cannot parse such a file either: the same fact, seen thrice
    "cross-reference section naming itself as predecessor": (
        loop_xref,
        {"sig.malformed"},
        {
            "pdfa": "pdfa.parse",
            "embedded-data": "data.unusable",
            "conversion-mark": "mark.unknown_kind",
        },
    ),
    "startxref pointing off its cross-reference section": (
        break_startxref,
        {"sig.malformed"},
        {
            "pdfa": "pdfa.parse",
            "embedded-data": "data.unusable",
            "conversion-mark": "mark.unknown_kind",
        },
    ),
    "empty CMS": (empty_cms, {"sig.cms_invalid"}, {}),
    "foreign CMS (not SignedData)": (foreign_cms, {"sig.cms_invalid"}, {}),
    "two signer infos in one SignedData": (double_signer_info, {"sig.cms_invalid"}, {}),
    "not a PDF": (
        lambda a: b"%PDF-1.7\n" + bytes(range(256)),
        {"sig.malformed"},
        {
            "pdfa": "pdfa.header",
            "embedded-data": "data.unusable",
            "conversion-mark": "mark.unknown_kind",
        },
    ),
}


def test_the_genuine_document_passes_every_check(attack: Attack, trust: TrustPolicy) -> None:
    results = verify_document(attack.signed, trust=trust, now=datetime.now(UTC))
    assert _by_check(results) == ALL_PASS, results


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_check_functions_report_the_attack_and_nothing_else(
    name: str, attack: Attack, trust: TrustPolicy
) -> None:
    build, signature_codes, others = ATTACKS[name]
    forged = build(attack)
    results = _by_check(verify_document(forged, trust=trust, now=datetime.now(UTC)))
    assert results["signature"] in signature_codes, results
    assert {k: v for k, v in results.items() if k != "signature"} == {
        **{k: v for k, v in ALL_PASS.items() if k != "signature"},
        **others,
    }


@pytest.mark.parametrize("name", list(ATTACKS))
def test_verify_file_prints_the_reason_and_exits_non_zero(
    name: str, attack: Attack, inspector: Settings, tmp_path: Path
) -> None:
    build, signature_codes, _ = ATTACKS[name]
    path = tmp_path / "copy.pdf"
    path.write_bytes(build(attack))
    result = CliRunner().invoke(verify_file_cmd, [str(path)], obj=inspector)
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


HOSTILE = (
    "document timestamp copied from another document",
    "byte ranges overlapping",
    "startxref pointing off its cross-reference section",
    "two signer infos in one SignedData",
)


def _verify_file(settings: Settings, path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``emr-archive verify-file`` as an inspector runs it: its own process, its own stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMR_ARCHIVE_", "AWS_"))}
    env["EMR_ARCHIVE_DATA_DIR"] = str(settings.data_dir)
    for name, value in settings.stack.model_dump().items():
        env[f"EMR_ARCHIVE_STACK__{name.upper()}"] = str(value)
    command = [sys.executable, "-m", "infra.cli", "verify-file", *flags, str(path)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_verify_file_on_a_hostile_document_prints_one_verdict_and_no_traceback(
    name: str, attack: Attack, stack_settings: Settings, tmp_path: Path
) -> None:
    build, signature_codes, _ = ATTACKS[name]
    path = tmp_path / "copy.pdf"
    path.write_bytes(build(attack))
    result = _verify_file(stack_settings, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""  # pyHanko's warnings and tracebacks went into the report
    lines = result.stdout.splitlines()
    assert [line for line in lines if "copy.pdf:" in line] == ["copy.pdf: FAILED"]
    [signature] = [line for line in lines if line.split()[1:2] == ["signature"]]
    assert signature.split()[0] == "FAIL"  # a failure, not the indeterminate "??"
    assert signature.split()[2] in signature_codes, signature
    assert len([line for line in lines if not line.startswith("note ")]) == 5  # 4 checks + verdict
    assert "Traceback" not in result.stdout
    assert not any(line.startswith("     log ") for line in lines)


def test_verify_file_verbose_shows_the_library_log(
    attack: Attack, stack_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "copy.pdf"
    path.write_bytes(_copied_timestamp(attack))
    result = _verify_file(stack_settings, path, "--verbose")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    log = [line for line in result.stdout.splitlines() if line.startswith("     log ")]
    assert any("pyhanko" in line for line in log), result.stdout  # pyHanko's own warning
    assert "Traceback" not in result.stdout
    assert "copy.pdf: FAILED" in result.stdout
