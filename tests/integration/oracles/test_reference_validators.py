"""The field's reference validators judge every kind of PDF the archive writes.

veraPDF (PDF/A-3B profile) must call each document compliant before and after signing; EU DSS
(default policy, the development CA the only trust anchor, offline) must pass each signed one at
PAdES-BASELINE-LTA. Documents come from the producers themselves on the session's stack: the
renderer and the hospital's signer for discharge summaries, the retention code's minutes writer
(render, sign, seal, store) for destruction minutes, and every record a real archive run over a
sample export stored. The hospital's key is in memory (PKCS#12) for the summaries and the first
minutes, and on a SoftHSM2 token (PKCS#11, nothing else configured) for the nightly run and a
second copy of the minutes. Each oracle runs once for all files (one JVM start); and each is
shown a document it must refuse, so neither is a check that cannot fail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF

from archive import wiring
from archive.catalog import Catalog
from archive.render import Renderer
from archive.seal import ObjectIdentity, unseal
from archive.sign import DocumentSigner, SignedDocument, SignerConfig
from archive.store import S3ObjectStore
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from retention.candidates import Item
from retention.minutes import MinutesWriter, read_minutes, render_minutes
from retention.people import Actor
from retention.policy import load_policy
from retention.proposals import Proposal
from retention.signoff import Approval
from tests.support.attacks import Attack, sign_directly
from tests.support.fhir import canonical, example_bundle
from tests.support.nightly import Export, make_export, run_once
from tests.support.oracles import DssVerdict, PdfaVerdict, dss, verapdf
from tests.support.softhsm import settings_on_token, signer_on_token

pytestmark = pytest.mark.integration

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LONG_COURSE = "Bệnh nhân tỉnh, tiếp xúc tốt, hết sốt từ ngày thứ ba; phổi còn ít ran nổ. " * 120


@dataclass(frozen=True)
class Judged:
    files: dict[str, Path]
    pdfa: dict[Path, PdfaVerdict]
    pades: dict[Path, DssVerdict]


def _item(n: int) -> Item:
    return Item(
        encounter_id=f"E-{n}",
        patient_pseudonym=f"p1_{n:064d}",
        facility="01001",
        retention_class="ordinary",
        discharged_at="2014-05-01T03:00:00+00:00",
        retain_until="2024-12-31T17:00:00+00:00",
        object_key=f"records/v1/01001/aa/r{n}",
        versions=("v1", "v2"),
        pdf_sha256=f"{n:064x}",
        sealed_sha256=f"{n + 1:064x}",
    )


def _minutes(settings: Settings) -> tuple[bytes, bytes]:
    """The destruction minutes as rendered, and as the retention code signs, seals and stores
    them (read back from the bucket)."""
    items = tuple(_item(n) for n in range(40))  # more than a page
    proposal = Proposal(
        proposal_id=f"disp-{secrets.token_hex(4)}",
        proposed_by="lan",
        proposed_at=AT.isoformat(),
        policy_ref="vn-tt33-2025@1",
        items=items,
        excluded={},
    )
    approval = Approval(Actor("lan", "records-officer"), Actor("director.binh", "facility-head"))
    store, keys = wiring.open_store(settings), wiring.open_keyring(settings)
    writer = MinutesWriter(
        settings=settings,
        store=store,
        keys=keys,
        policy=load_policy(settings.archive.retention_policy),
    )
    stored = writer(proposal, items, approval, AT)
    signed = read_minutes(store, keys, settings, stored, proposal.proposal_id)
    return render_minutes(proposal, items, approval, AT), signed


def _nightly(settings: Settings, export: Export) -> dict[str, bytes]:
    """Every record one real archive run over a sample export stored, unsealed from the bucket
    (``settings`` sign with the key on the token: the records are token-signed)."""
    summary = run_once(settings, export)
    assert summary.archived == len(export.summary.in_window) > 0, summary
    assert summary.failed == {}, summary
    store, keys = wiring.open_store(settings), wiring.open_keyring(settings)
    pdfs = {}
    for n, row in enumerate(Catalog.open(settings.catalog_dir).rows().to_pylist()):
        identity = ObjectIdentity(row["bucket"], row["object_key"], row["encounter_id"])
        sealed = store.get(row["object_key"], version_id=row["version_id"])
        pdfs[f"nightly-token-{n}-signed"] = unseal(
            sealed, identity=identity, keys=keys, settings=settings.seal
        )
    return pdfs


def _not_pdfa() -> bytes:
    pdf = FPDF()  # no OutputIntent, no XMP identification, a non-embedded standard font
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "not an archive document")
    return bytes(pdf.output())


def _tampered(signed: bytes) -> bytes:
    """One digit of the signed Info dictionary changed: every signed byte range is broken."""
    at = signed.index(b"/CreationDate (D:2026") + len(b"/CreationDate (D:2026")
    return signed[: at - 1] + b"5" + signed[at:]


@pytest.fixture(scope="module")
def judged(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Judged:
    out = tmp_path_factory.mktemp("oracles")
    bucket = f"oracles-{secrets.token_hex(4)}"
    settings = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"bucket": bucket}),
            "catalog": stack_settings.catalog.model_copy(update={"catalog_dir": out / "catalog"}),
        }
    )
    S3ObjectStore.from_settings(settings).create_locked_bucket()
    renderer = Renderer.create()
    summaries = {
        name: renderer.render(bundle, canonical(bundle), created_at=AT).pdf
        for name, bundle in (
            ("summary", example_bundle()),
            ("summary-long", example_bundle(course=LONG_COURSE)),
        )
    }
    signer = DocumentSigner.create(SignerConfig.from_settings(settings))
    outcomes = signer.sign_batch(list(summaries.values()))
    docs: dict[str, bytes] = dict(summaries)
    for name, outcome in zip(summaries, outcomes, strict=True):
        assert isinstance(outcome, SignedDocument), outcome
        docs[f"{name}-signed"] = outcome.pdf
    pki = DevPki(pki_dir=settings.pki_dir, port=settings.stack.pki_port)
    token, _ = signer_on_token(tmp_path_factory, pki.signer)
    on_token = settings_on_token(settings, token, workers=settings.archive.workers)
    docs["minutes"], docs["minutes-signed"] = _minutes(settings)
    docs["minutes-token-signed"] = _minutes(on_token)[1]
    docs["not-pdfa"] = _not_pdfa()
    docs["summary-signed-tampered"] = _tampered(docs["summary-signed"])
    foreign = Attack(pki=pki, document=summaries["summary"], signed=docs["summary-signed"])
    docs["summary-signed-untrusted"] = sign_directly(
        foreign, "untrusted-signer", timestamp=True, lta_trusting=pki.untrusted_root
    )
    docs.update(_nightly(on_token, make_export(out / "export", encounters=16, seed=3)))
    files = {name: out / f"{name}.pdf" for name in docs}
    for name, path in files.items():
        path.write_bytes(docs[name])
    signed = [p for n, p in files.items() if "signed" in n]
    return Judged(files, verapdf(list(files.values())), dss(signed, trust_anchor=pki.trust_root))


PRODUCED = ("summary", "summary-long", "minutes")
SIGNED = (*(f"{n}-signed" for n in PRODUCED), "minutes-token-signed")


@pytest.mark.parametrize("name", [*PRODUCED, *SIGNED])
def test_verapdf_finds_every_document_pdfa_3b_before_and_after_signing(
    judged: Judged, name: str
) -> None:
    verdict = judged.pdfa[judged.files[name]]
    assert verdict.error is None, verdict.error
    assert verdict.compliant, verdict.failed


def test_verapdf_finds_every_record_of_a_nightly_run_on_the_token_pdfa_3b(judged: Judged) -> None:
    records = [p for n, p in judged.files.items() if n.startswith("nightly-")]
    assert len(records) >= 4
    refused = {p.name: v.error or v.failed for p in records if not (v := judged.pdfa[p]).compliant}
    assert refused == {}


@pytest.mark.parametrize("name", SIGNED)
def test_dss_passes_every_signed_document_at_pades_baseline_lta(judged: Judged, name: str) -> None:
    verdict = judged.pades[judged.files[name]]
    assert verdict.error is None, verdict.error
    [signature] = verdict.signatures
    assert (signature.indication, signature.sub_indication) == ("TOTAL_PASSED", None), signature
    assert signature.level == "PAdES-BASELINE-LTA", signature
    assert (signature.errors, signature.warnings) == ((), ()), signature
    # B-LTA: the signature's own timestamp and a document timestamp over the validation data.
    kinds = {(t.type, t.indication) for t in signature.timestamps}
    assert kinds == {("SIGNATURE_TIMESTAMP", "PASSED"), ("DOCUMENT_TIMESTAMP", "PASSED")}, kinds
    assert verdict.timestamps == (), "a timestamp that covers no signature"


def test_dss_passes_every_record_of_a_nightly_run_on_the_token_at_pades_baseline_lta(
    judged: Judged,
) -> None:
    records = [p for n, p in judged.files.items() if n.startswith("nightly-")]
    assert len(records) >= 4
    verdicts = {p.name: judged.pades[p] for p in records}
    refused = {
        name: v
        for name, v in verdicts.items()
        if v.error is not None
        or [(s.indication, s.level, s.errors) for s in v.signatures]
        != [("TOTAL_PASSED", "PAdES-BASELINE-LTA", ())]
    }
    assert refused == {}


def test_verapdf_refuses_a_pdf_that_is_not_pdfa(judged: Judged) -> None:
    verdict = judged.pdfa[judged.files["not-pdfa"]]
    assert verdict.error is None, verdict.error
    assert not verdict.compliant
    assert verdict.failed


def test_dss_refuses_a_tampered_signed_record(judged: Judged) -> None:
    verdict = judged.pades[judged.files["summary-signed-tampered"]]
    assert verdict.error is None, verdict.error
    [signature] = verdict.signatures
    assert (signature.indication, signature.sub_indication) == ("TOTAL_FAILED", "HASH_FAILURE")


def test_dss_refuses_a_b_lta_signature_from_a_ca_that_is_not_the_anchor(judged: Judged) -> None:
    # A complete B-LTA document whose signer chains to another CA: the anchor is really the
    # development CA alone, and nothing is fetched to make up for it.
    verdict = judged.pades[judged.files["summary-signed-untrusted"]]
    assert verdict.error is None, verdict.error
    [signature] = verdict.signatures
    assert (signature.indication, signature.sub_indication) == (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
    ), signature
