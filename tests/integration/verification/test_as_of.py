"""Tests that travel in time: an archived PDF's evidence record judged decades ahead.

A real PAdES B-LTA document (the renderer and the hospital's signer on the session's stack) gets
its run's evidence record from the development PKI's first TSA (``tsa``, 10 years), over HTTP as
the nightly run does. Renewals are stamped by the second TSA (``tsa-2``, "EMR Dev Archive TSA",
45 years): over HTTP today, or, to renew years from now, by certomancer's own TimeStamper with
that TSA's key and certificate at a fixed moment. Then ``verify-file --at`` and the validator
are asked about dates after the first TSA has lapsed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, keys, pem, tsp, x509
from certomancer.services import TimeStamper
from click.testing import CliRunner
from pyhanko.sign.timestamps import HTTPTimeStamper

from archive.evidence import (
    CHAIN_BROKEN,
    EXPIRED,
    NOT_COVERED,
    WEAK_ALGORITHM,
    DataObject,
    EvidenceVerdict,
    HashTree,
    Record,
    WeakAlgorithms,
    asn1,
    hash_tree_renewal_leaf,
    new_record,
    renew_hash_tree,
    renew_timestamp,
    timestamp_renewal_leaf,
)
from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig, TrustPolicy
from infra.cli.commands.verify import verify_file_cmd
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.fhir import canonical, example_bundle
from verification.as_of import judge_evidence, verify_document_as_of
from verification.settings import weak_table

pytestmark = pytest.mark.integration

_YEAR = timedelta(days=365)


@dataclass(frozen=True)
class Archived:
    pki: DevPki
    pdf: bytes
    signed_at: datetime
    records: dict[str, Record]  # initial, renewed (+9 y), late (+11 y), rehashed (+12 y), today

    def ahead(self, years: int) -> datetime:
        return self.signed_at + years * _YEAR


def _cert(pki: DevPki, label: str) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(pki.cert_path(label).read_bytes())[2])


def _stamp_at(
    pki: DevPki, label: str, digest: bytes, algorithm: str, at: datetime
) -> cms.ContentInfo:
    """A token of the dev TSA ``label`` dated ``at``: certomancer's TSA signing offline with that
    TSA's own key (the service answers only "now")."""
    key = keys.PrivateKeyInfo.load(
        pem.unarmor((pki.pki_dir / "keys" / f"{label}.key.pem").read_bytes())[2]
    )
    stamper = TimeStamper(
        _cert(pki, label),
        key,
        certs_to_embed=[_cert(pki, "issuing-ca")],
        fixed_dt=at,
        md_algorithm=algorithm,
    )
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": algorithm},
                "hashed_message": digest,
            },
            "cert_req": True,
        }
    )
    reply = stamper.request_tsa_response(request)
    assert reply["status"]["status"].native == "granted"
    token: cms.ContentInfo = reply["time_stamp_token"]
    return token


def _stamp_now(url: str, digest: bytes, algorithm: str) -> cms.ContentInfo:
    token: cms.ContentInfo = asyncio.run(HTTPTimeStamper(url).async_timestamp(digest, algorithm))
    return token


def _renew(record: Record, token_of: object) -> Record:
    leaf = timestamp_renewal_leaf(record)
    tree = HashTree.build("sha256", [leaf, hashlib.sha256(b"another run's token").digest()])
    token = token_of(tree.root)  # type: ignore[operator]
    return renew_timestamp(record, tree.reduced(leaf), token)


@pytest.fixture(scope="module")
def archived(stack_settings: Settings) -> Archived:
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    bundle = example_bundle(course="Hết sốt; ra viện ổn định.")
    unsigned = Renderer.create().render(bundle, canonical(bundle), created_at=datetime.now(UTC)).pdf
    [signed] = DocumentSigner.create(SignerConfig.from_settings(stack_settings)).sign_batch(
        [unsigned]
    )
    assert isinstance(signed, SignedDocument), signed
    pdf = signed.pdf
    own = hashlib.sha256(pdf).digest()
    tree = HashTree.build("sha256", [own, hashlib.sha256(b"the run's catalog manifest").digest()])
    initial = new_record("sha256", tree.reduced(own), _stamp_now(pki.tsa_url, tree.root, "sha256"))
    t0 = initial.chains[0][0].gen_time
    renewed = _renew(initial, lambda root: _stamp_at(pki, "tsa-2", root, "sha256", t0 + 9 * _YEAR))
    late = _renew(initial, lambda root: _stamp_at(pki, "tsa-2", root, "sha256", t0 + 11 * _YEAR))
    today = _renew(initial, lambda root: _stamp_now(pki.archive_tsa_url, root, "sha256"))
    leaf = hash_tree_renewal_leaf(renewed, 1, "sha512", hashlib.sha512(pdf).digest())
    tree = HashTree.build("sha512", [leaf, hashlib.sha512(b"another document").digest()])
    token = _stamp_at(pki, "tsa-2", tree.root, "sha512", t0 + 12 * _YEAR)
    rehashed = renew_hash_tree(renewed, "sha512", tree.reduced(leaf), token)
    records = {
        "initial": initial,
        "renewed": renewed,
        "late": late,
        "rehashed": rehashed,
        "today": today,
    }
    return Archived(pki, pdf, t0, records)


def _judge(
    archived: Archived,
    der: bytes,
    years: int,
    *,
    pdf: bytes | None = None,
    weak: WeakAlgorithms = WeakAlgorithms(),  # noqa: B008 (frozen)
) -> EvidenceVerdict:
    return judge_evidence(
        der,
        DataObject(data=archived.pdf if pdf is None else pdf),
        as_of=archived.ahead(years),
        tsa_roots=[_cert(archived.pki, "root")],
        weak=weak,
    )


def test_the_two_tsas_have_staggered_validity(archived: Archived) -> None:
    tsa1, tsa2 = _cert(archived.pki, "tsa"), _cert(archived.pki, "tsa-2")
    assert archived.ahead(9) < tsa1.not_valid_after < archived.ahead(11)
    assert tsa2.not_valid_after > archived.ahead(40)
    for ca in ("root", "issuing-ca"):
        assert _cert(archived.pki, ca).not_valid_after >= tsa2.not_valid_after


def test_without_renewal_the_proof_ends_with_the_first_tsa(archived: Archived) -> None:
    der = archived.records["initial"].dump()
    assert _judge(archived, der, 9).ok
    verdict = _judge(archived, der, 11)
    assert verdict.code == EXPIRED, verdict


def test_renewed_by_the_archive_tsa_in_time_the_proof_holds_30_years_ahead(
    archived: Archived,
) -> None:
    for name in ("renewed", "today"):
        verdict = _judge(archived, archived.records[name].dump(), 30)
        assert verdict.ok, (name, verdict)
        assert verdict.proven_at == archived.signed_at  # the PDF existed then, proven now
    assert _judge(archived, archived.records["renewed"].dump(), 46).code == EXPIRED


def test_a_renewal_after_the_first_tsa_lapsed_is_too_late(archived: Archived) -> None:
    verdict = _judge(archived, archived.records["late"].dump(), 30)
    assert verdict.code == EXPIRED, verdict


def test_a_sha512_hash_tree_renewal_outlives_sha256(archived: Archived) -> None:
    sha256_weak = WeakAlgorithms.parse([f"sha256:{archived.ahead(20):%Y-%m-%d}"])
    rehashed, renewed = (archived.records[n].dump() for n in ("rehashed", "renewed"))
    assert _judge(archived, rehashed, 30, weak=sha256_weak).ok
    assert _judge(archived, renewed, 30, weak=sha256_weak).code == WEAK_ALGORITHM
    assert _judge(archived, renewed, 19, weak=sha256_weak).ok  # before the date it was fine


def _rebuilt(record: Record, chains: list[list[asn1.ArchiveTimeStamp]]) -> bytes:
    rebuilt = asn1.EvidenceRecord(
        {
            "version": 1,
            "digest_algorithms": record.asn1["digest_algorithms"],
            "archive_time_stamp_sequence": [asn1.ArchiveTimeStampChain(c) for c in chains],
        }
    )
    der: bytes = rebuilt.dump(force=True)
    return der


def _chains(record: Record) -> list[list[asn1.ArchiveTimeStamp]]:
    return [list(c) for c in record.asn1["archive_time_stamp_sequence"]]


def _node_changed(record: Record, own: bytes) -> bytes:
    chains = _chains(record)
    ats = chains[0][0]
    tree = [list(p.native) for p in ats["reduced_hashtree"]]
    level, index = next((i, j) for i, p in enumerate(tree) for j, v in enumerate(p) if v != own)
    tree[level][index] = bytes([tree[level][index][0] ^ 1]) + tree[level][index][1:]
    fields = {
        "digest_algorithm": ats["digest_algorithm"],
        "reduced_hashtree": tree,
        "time_stamp": ats["time_stamp"],
    }
    chains[0][0] = asn1.ArchiveTimeStamp(fields)
    return _rebuilt(record, chains)


def _token_byte_changed(record: Record) -> bytes:
    """One byte inside the renewal token's signed TSTInfo (its serial number)."""
    der = bytearray(record.dump())
    token = record.chains[0][1].token_der
    info = record.chains[0][1].token["content"]["encap_content_info"]["content"].contents
    at = bytes(der).index(token) + token.index(info) + len(info) // 2
    der[at] ^= 0x01
    return bytes(der)


@pytest.mark.parametrize(
    ("tampered", "codes"),
    [
        ("document byte", {NOT_COVERED}),
        ("reduced-tree node", {NOT_COVERED, CHAIN_BROKEN}),
        ("timestamp byte", {CHAIN_BROKEN, "evidence.malformed"}),
        ("chain order", {CHAIN_BROKEN}),
    ],
)
def test_tampering_is_caught_30_years_ahead(
    archived: Archived, tampered: str, codes: set[str]
) -> None:
    renewed = archived.records["renewed"]
    pdf = archived.pdf
    der = renewed.dump()
    if tampered == "document byte":
        changed = bytearray(pdf)
        changed[len(changed) // 3] ^= 0x01
        pdf = bytes(changed)
    elif tampered == "reduced-tree node":
        der = _node_changed(renewed, hashlib.sha256(pdf).digest())
    elif tampered == "timestamp byte":
        der = _token_byte_changed(renewed)
    else:
        der = _rebuilt(renewed, [list(reversed(_chains(renewed)[0]))])
    verdict = _judge(archived, der, 30, pdf=pdf)
    assert verdict.code in codes, verdict
    assert _judge(archived, renewed.dump(), 30).ok  # the untouched record still passes


def test_the_document_is_judged_at_its_proven_existence_not_at_the_date(
    archived: Archived, stack_settings: Settings
) -> None:
    trust = TrustPolicy.load(SignerConfig.from_settings(stack_settings))
    weak = weak_table(stack_settings)
    at = archived.ahead(30)
    renewed = archived.records["renewed"].dump()
    codes = {
        r.check: r.reason_code
        for r in verify_document_as_of(
            archived.pdf, trust=trust, as_of=at, evidence=renewed, weak=weak
        )
    }
    assert (codes["signature"], codes["evidence"]) == ("sig.ok", "evidence.ok"), codes
    alone = {
        r.check: r.reason_code
        for r in verify_document_as_of(
            archived.pdf, trust=trust, as_of=at, evidence=None, weak=weak
        )
    }
    assert alone["signature"] == "sig.timestamp_expired", alone
    assert "evidence" not in alone


def test_verify_file_30_years_ahead_passes_only_with_a_renewed_record(
    archived: Archived, stack_settings: Settings, tmp_path: Path
) -> None:
    pdf = tmp_path / "record.pdf"
    pdf.write_bytes(archived.pdf)
    verdicts = {}
    for name in ("today", "initial"):
        er = tmp_path / f"{name}.ers"
        er.write_bytes(archived.records[name].dump())
        args = ["--at", "+30y", "--evidence", str(er), str(pdf)]
        result = CliRunner().invoke(verify_file_cmd, args, obj=stack_settings)
        verdicts[name] = (result.exit_code, result.output)
    code, out = verdicts["today"]
    assert code == 0, out
    assert out.splitlines()[0].startswith("as of ")
    assert out.splitlines()[-1] == "record.pdf: PASSED"
    # 30 years on the document timestamp's TSA certificate has long expired: said so, covered.
    [note] = [line for line in out.splitlines() if line.startswith("note ")]
    assert note.startswith("note horizon.tsa_expired: "), note
    assert "covered by its evidence record" in note, note
    code, out = verdicts["initial"]
    assert code == 1, out
    [evidence] = [line for line in out.splitlines() if line.split()[1:2] == ["evidence"]]
    assert evidence.split()[:3] == ["FAIL", "evidence", "evidence.expired"], evidence
    assert out.splitlines()[-1] == "record.pdf: FAILED"
    [note] = [line for line in out.splitlines() if line.startswith("note ")]
    assert note.startswith("note horizon.tsa_expired: "), note
    assert "no evidence record proves the PDF existed before then" in note, note


def test_a_record_s_evidence_costs_little_once_its_run_s_token_is_checked(
    archived: Archived,
) -> None:
    der = archived.records["today"].dump()
    assert _judge(archived, der, 30).ok  # the first record of the run pays for the tokens
    rounds = 200
    begin = time.perf_counter()
    for _ in range(rounds):
        _judge(archived, der, 30)
    per_record = (time.perf_counter() - begin) / rounds
    print(f"evidence validation per record, tokens cached: {per_record * 1000:.2f} ms")
    assert per_record < 0.05  # < 5 ms on an idle machine (issue #12); loose for a busy CI
