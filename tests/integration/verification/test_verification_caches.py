"""What verification keeps between documents never turns a failing document into a passing one.

Each attack comes after many genuine documents signed by the same hospital key under the same CA
and TSA (so every per-process cache is warm with their answers: certificate chains, prepared
certificate names, certificate path + revocation answers), and must get exactly the verdict it
gets from a cold process: a revoked signer, a document changed after signing, a document
timestamp whose imprint is another document's, a signer from a CA outside the trust roots. (The
path cache's time windows are attacked one by one in tests/unit/archive/test_path_cache.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig, TrustPolicy, path_cache
from archive.sign.contexts import forget_chains
from archive.sign.name_prep import _prepared
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.attacks import Attack, add_page_content, copy_foreign_timestamp, sign_directly
from tests.support.fhir import canonical, example_bundle
from tests.support.revoked import revoked_signer_lta
from tests.support.trust import dev_trust
from verification.document import verify_document

pytestmark = pytest.mark.integration

GOOD_BEFORE = 6  # genuine documents verified before each attack


@pytest.fixture(scope="module")
def genuine(stack_settings: Settings) -> tuple[Attack, list[bytes]]:
    """One document to attack and a dozen genuine ones by the same key, CA and TSA."""
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    signer = DocumentSigner.create(SignerConfig.from_settings(stack_settings))
    bundle = example_bundle()
    documents = [
        Renderer.create()
        .render(bundle, canonical(bundle), created_at=datetime(2026, 6, 1, 9, i, tzinfo=UTC))
        .pdf
        for i in range(4)
    ]
    signed = signer.sign_batch(documents)
    assert all(isinstance(s, SignedDocument) for s in signed), signed
    pdfs = [s.pdf for s in signed if isinstance(s, SignedDocument)]
    return Attack(pki=pki, document=documents[0], signed=pdfs[0]), pdfs


@pytest.fixture(scope="module")
def trust(genuine: tuple[Attack, list[bytes]]) -> TrustPolicy:
    # the misfits count as the hospital's own keys, to reach the verdict on their certificates
    return dev_trust(genuine[0].pki, "revoked-signer", "untrusted-signer")


def _foreign_timestamp(attack: Attack) -> bytes:
    other = sign_directly(
        attack, "hospital-signer", timestamp=True, lta_trusting=attack.pki.trust_root
    )
    return copy_foreign_timestamp(attack, other)


ATTACKS: dict[str, Callable[[Attack], bytes]] = {
    "revoked signer": revoked_signer_lta,
    "page content added after signing": add_page_content,
    "document timestamp imprint of another document": _foreign_timestamp,
    "signer from a CA outside the trust roots": lambda a: sign_directly(
        a, "untrusted-signer", timestamp=True, lta_trusting=a.pki.untrusted_root
    ),
}


def _verdict(pdf: bytes, trust: TrustPolicy) -> dict[str, str]:
    return {
        r.check: r.reason_code for r in verify_document(pdf, trust=trust, now=datetime.now(UTC))
    }


def _cold() -> None:
    forget_chains()
    path_cache.forget()
    _prepared.cache_clear()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attack_after_many_good_documents_gets_its_cold_verdict(
    name: str, genuine: tuple[Attack, list[bytes]], trust: TrustPolicy
) -> None:
    attack, pdfs = genuine
    forged = ATTACKS[name](attack)
    _cold()
    cold = _verdict(forged, trust)
    assert cold["signature"] != "sig.ok", cold
    reused = path_cache.hits()
    for i in range(GOOD_BEFORE):  # warm every cache with the genuine documents' answers
        assert _verdict(pdfs[i % len(pdfs)], trust)["signature"] == "sig.ok"
    assert path_cache.hits() > reused  # the genuine documents' path answers were reused
    assert _verdict(forged, trust) == cold
    _cold()
    assert _verdict(pdfs[0], trust)["signature"] == "sig.ok"  # and the other way round
    assert _verdict(forged, trust) == cold
