"""Evidence records we build over real signed PDFs, judged by Bouncy Castle and EU DSS.

Two nightly "runs" of real PAdES B-LTA documents (the renderer and the hospital's signer on the
session's stack) each get one timestamp from the real certomancer TSA on the root of their
hash tree (archive/evidence); then one timestamp renews both runs' records at once, and one
SHA-512 hash-tree renewal re-hashes every document into a new chain. Bouncy Castle's
``org.bouncycastle.tsp.ers`` and DSS's evidence-record validator (tests/oracles, one JVM for all
pairs) must accept every record for its document, with the development root the only anchor and
nothing fetched; and must both refuse a changed document byte, a changed reduced-tree node and
records whose order was swapped, so neither is a check that cannot fail. Our own validator is
held to the same verdicts. A few DSS/BSI vectors with known verdicts check the harness itself,
and DSS is shown an archived PDF with its evidence record as of a date decades ahead.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, pem, x509
from pyhanko.sign.timestamps import HTTPTimeStamper

from archive.evidence import (
    DataObject,
    EvidenceVerdict,
    HashTree,
    Record,
    TsaTrust,
    WeakAlgorithms,
    asn1,
    hash_tree_renewal_leaf,
    new_record,
    read_record,
    renew_hash_tree,
    renew_timestamp,
    timestamp_renewal_leaf,
    validate_evidence,
    with_validation_data,
)
from archive.render import Renderer
from archive.sign import DocumentSigner, SignedDocument, SignerConfig
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support.evidence import VECTORS, vector_cases
from tests.support.fhir import canonical, example_bundle
from tests.support.oracles import DssVerdict, ErsVerdict, dss_with_evidence, ers

pytestmark = pytest.mark.integration

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
KINDS = ("initial", "ts-renewed", "ht-renewed")
YEARS_AHEAD = (0, 30)
RUNS = ((0, 1, 2), (3,))  # documents by run: an odd count, and a run of one
# DSS/BSI vectors whose one data object is a file or inline bytes, with DSS's verdict
VECTOR_CASES = ("simple", "simple-wrong-data", "fujitsu-1-3", "on-timestamp", "one-level-hashtree")


@dataclass(frozen=True)
class Judged:
    docs: dict[int, Path]
    records: dict[tuple[int, str], Path]
    tampered: dict[str, tuple[Path, Path]]
    vectors: dict[str, tuple[Path, Path, str]]  # id -> (data, record, expected)
    oracles: dict[tuple[Path, Path], ErsVerdict]
    ours: dict[tuple[Path, Path], EvidenceVerdict]
    seconds: float
    ahead: dict[int, DssVerdict]  # years ahead -> DSS on record 0 with its evidence record
    archive_tsa: DssVerdict  # DSS 30 years ahead on record 0 renewed by the archive TSA


def _stamp(pki: DevPki, digest: bytes, algorithm: str, url: str | None = None) -> cms.ContentInfo:
    """A token from the real TSA (the first, unless ``url``), with the CRLs of its certificate
    path attached, as the nightly run keeps them (fetched at once, so they date from the
    timestamp)."""
    token: cms.ContentInfo = asyncio.run(
        HTTPTimeStamper(url or pki.tsa_url).async_timestamp(digest, algorithm)
    )
    crls = [_get(pki.crl_url(issuer)) for issuer in ("issuing-ca", "root")]
    return with_validation_data(token, crls=crls)


def _bare(token: cms.ContentInfo) -> cms.ContentInfo:
    signed = token["content"].copy()
    del signed["crls"]
    return cms.ContentInfo({"content_type": "signed_data", "content": signed})


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (loopback http)
        body: bytes = reply.read()
    return body


def _records(pki: DevPki, pdfs: dict[int, bytes]) -> dict[tuple[int, str], Record]:
    """Each run's tree and token, then one renewal of each kind over both runs together."""
    out: dict[tuple[int, str], Record] = {}
    for run in RUNS:
        leaves = {n: hashlib.sha256(pdfs[n]).digest() for n in run}
        # a run's tree also covers its catalog manifest: the documents are never alone in it
        tree = HashTree.build("sha256", [*leaves.values(), hashlib.sha256(bytes(run)).digest()])
        token = _stamp(pki, tree.root, "sha256")
        for n, leaf in leaves.items():
            out[n, "initial"] = new_record("sha256", tree.reduced(leaf), token)
            out[n, "bare"] = new_record("sha256", tree.reduced(leaf), _bare(token))
    renewal = {n: timestamp_renewal_leaf(out[n, "initial"]) for n in pdfs}
    bare = {n: out.pop((n, "bare")) for n in pdfs}
    out[0, "bare"] = bare[0]
    tree = HashTree.build("sha256", renewal.values())  # one leaf per run's token
    token = _stamp(pki, tree.root, "sha256")
    for n, leaf in renewal.items():
        out[n, "ts-renewed"] = renew_timestamp(out[n, "initial"], tree.reduced(leaf), token)
    # the same renewal by the second, long-lived TSA: what the renewal job does in development
    token = _stamp(pki, tree.root, "sha256", url=pki.archive_tsa_url)
    out[0, "archive-tsa"] = renew_timestamp(out[0, "initial"], tree.reduced(renewal[0]), token)
    rehashed = {
        n: hash_tree_renewal_leaf(
            out[n, "ts-renewed"], 1, "sha512", hashlib.sha512(pdfs[n]).digest()
        )
        for n in pdfs
    }
    tree = HashTree.build("sha512", rehashed.values())
    token = _stamp(pki, tree.root, "sha512")
    for n, leaf in rehashed.items():
        out[n, "ht-renewed"] = renew_hash_tree(
            out[n, "ts-renewed"], "sha512", tree.reduced(leaf), token
        )
    return out


def _rebuild(der: bytes, chains: list[list[asn1.ArchiveTimeStamp]]) -> bytes:
    record = asn1.EvidenceRecord.load(der)
    rebuilt = asn1.EvidenceRecord(
        {
            "version": 1,
            "digest_algorithms": record["digest_algorithms"],
            "archive_time_stamp_sequence": [asn1.ArchiveTimeStampChain(c) for c in chains],
        }
    )
    out: bytes = rebuilt.dump(force=True)
    return out


def _chains(der: bytes) -> list[list[asn1.ArchiveTimeStamp]]:
    return [list(c) for c in asn1.EvidenceRecord.load(der)["archive_time_stamp_sequence"]]


def _node_changed(der: bytes, chain: int, own: bytes) -> bytes:
    """One byte of a node of the first ATS's reduced tree that is not the document's own digest
    (a sibling, or a node higher up)."""
    chains = _chains(der)
    ats = chains[chain][0]
    tree = [list(p.native) for p in ats["reduced_hashtree"]]
    level, index = next((i, j) for i, p in enumerate(tree) for j, v in enumerate(p) if v != own)
    node = bytearray(tree[level][index])
    node[0] ^= 0x01
    tree[level][index] = bytes(node)
    fields = {"reduced_hashtree": tree, "time_stamp": ats["time_stamp"]}
    if ats["digest_algorithm"].native is not None:
        fields["digest_algorithm"] = ats["digest_algorithm"]
    chains[chain][0] = asn1.ArchiveTimeStamp(fields)
    return _rebuild(der, chains)


def _vectors(out: Path) -> dict[str, tuple[Path, Path, str]]:
    picked = {}
    for case in vector_cases():
        if case["id"] not in VECTOR_CASES:
            continue
        if case["detached_data"]:
            [name] = case["detached_data"]
            data = VECTORS / name
        else:
            [inline] = case["detached_inline"]
            data = out / f"vector-{case['id']}.bin"
            data.write_bytes(bytes.fromhex(inline["hex"]))
        picked[case["id"]] = (data, VECTORS / case["evidence_record"], case["expected"])
    assert set(picked) == set(VECTOR_CASES)
    return picked


def _ours(pki: DevPki, pairs: list[tuple[Path, Path]]) -> dict[tuple[Path, Path], EvidenceVerdict]:
    root = x509.Certificate.load(pem.unarmor(pki.trust_root.read_bytes())[2])
    check = TsaTrust([root])
    return {
        (doc, er): validate_evidence(
            er.read_bytes(),
            [DataObject(data=doc.read_bytes())],
            as_of=datetime.now(UTC),
            check_timestamp=check,
            weak=WeakAlgorithms(),
        )
        for doc, er in pairs
    }


@pytest.fixture(scope="module")
def judged(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Judged:
    out = tmp_path_factory.mktemp("evidence-oracles")
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    renderer = Renderer.create()
    bundles = [
        example_bundle(course=f"Hết sốt ngày thứ {n + 2}; ra viện ổn định.") for n in range(4)
    ]
    unsigned = [renderer.render(b, canonical(b), created_at=AT).pdf for b in bundles]
    signer = DocumentSigner.create(SignerConfig.from_settings(stack_settings))
    pdfs: dict[int, bytes] = {}
    for n, outcome in enumerate(signer.sign_batch(unsigned)):
        assert isinstance(outcome, SignedDocument), outcome
        pdfs[n] = outcome.pdf
    docs = {n: out / f"record-{n}.pdf" for n in pdfs}
    for n, path in docs.items():
        path.write_bytes(pdfs[n])
    records = {}
    for (n, kind), record in _records(pki, pdfs).items():
        records[n, kind] = out / f"record-{n}-{kind}.ers"
        records[n, kind].write_bytes(record.dump())

    changed = bytearray(pdfs[0])
    changed[len(changed) // 2] ^= 0x01
    (out / "record-0-changed.pdf").write_bytes(bytes(changed))
    initial, ts, ht = (records[0, k].read_bytes() for k in KINDS)
    own256 = hashlib.sha256(pdfs[0]).digest()
    own512 = hash_tree_renewal_leaf(read_record(ts), 1, "sha512", hashlib.sha512(pdfs[0]).digest())
    chains = _chains(ht)
    tampered_ers = {
        "node-initial": _node_changed(initial, 0, own256),
        "node-ht-renewal": _node_changed(ht, 1, own512),
        "chains-swapped": _rebuild(ht, [chains[1], chains[0]]),
        "stamps-swapped": _rebuild(ts, [list(reversed(_chains(ts)[0]))]),
    }
    tampered = {
        "doc-byte-initial": (out / "record-0-changed.pdf", records[0, "initial"]),
        "doc-byte-ht-renewal": (out / "record-0-changed.pdf", records[0, "ht-renewed"]),
    }
    for name, der in tampered_ers.items():
        (out / f"{name}.ers").write_bytes(der)
        tampered[name] = (docs[0], out / f"{name}.ers")

    vectors = _vectors(out)
    ours_pairs = [(docs[n], records[n, k]) for n, k in records] + list(tampered.values())
    pairs = ours_pairs + [(d, e) for d, e, _ in vectors.values()]
    started = time.monotonic()
    oracles = ers(pairs, trust_anchor=pki.trust_root)
    seconds = time.monotonic() - started
    ahead = {}
    renewed_copy = out / "record-0-archive-tsa.pdf"  # DSS's verdicts are keyed by the PDF
    renewed_copy.write_bytes(pdfs[0])
    for years in YEARS_AHEAD:
        at = datetime.now(UTC) + timedelta(days=365 * years + years // 4)
        pairs = [(docs[0], records[0, "ht-renewed"])]
        if years == max(YEARS_AHEAD):
            pairs.append((renewed_copy, records[0, "archive-tsa"]))
        verdicts = dss_with_evidence(pairs, trust_anchor=pki.trust_root, at=at)
        ahead[years] = verdicts[docs[0]]
    archive_tsa = verdicts[renewed_copy]
    ours = _ours(pki, ours_pairs)
    return Judged(docs, records, tampered, vectors, oracles, ours, seconds, ahead, archive_tsa)


def _dss_accepts(verdict: ErsVerdict) -> bool:
    d = verdict.dss
    return (
        d.error is None
        and d.indication == "PASSED"
        and d.covered
        and d.structurally_valid
        and all(t == ("PASSED", None, True) for t in d.timestamps)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_bouncy_castle_and_dss_accept_every_record_for_its_document(
    judged: Judged, kind: str
) -> None:
    pairs = [(judged.docs[n], judged.records[n, k]) for n, k in judged.records if k == kind]
    assert len(pairs) == len(judged.docs)
    verdicts = {er.name: judged.oracles[doc, er] for doc, er in pairs}
    assert {n: v.bc for n, v in verdicts.items() if not v.bc.accepted} == {}
    assert {n: v.dss for n, v in verdicts.items() if not _dss_accepts(v)} == {}
    chains = 2 if kind == "ht-renewed" else 1
    assert {v.bc.chains for v in verdicts.values()} == {chains}
    assert {len(v.dss.timestamps) for v in verdicts.values()} == {KINDS.index(kind) + 1}
    ours = {er.name: judged.ours[doc, er] for doc, er in pairs}
    assert {n: v for n, v in ours.items() if not v.ok} == {}


@pytest.mark.parametrize(
    "name",
    [
        "doc-byte-initial",
        "doc-byte-ht-renewal",
        "node-initial",
        "node-ht-renewal",
        "chains-swapped",
        "stamps-swapped",
    ],
)
def test_bouncy_castle_and_dss_refuse_a_tampered_record(judged: Judged, name: str) -> None:
    pair = judged.tampered[name]
    verdict = judged.oracles[pair]
    assert not verdict.bc.accepted, verdict.bc
    assert not _dss_accepts(verdict), verdict.dss
    assert not judged.ours[pair].ok, judged.ours[pair]


@pytest.mark.parametrize("case", VECTOR_CASES)
def test_the_harness_gives_the_dss_vectors_their_expected_verdicts(
    judged: Judged, case: str
) -> None:
    # The vectors' TSAs are not our anchors: only the hash layer is asked of them.
    data, record, expected = judged.vectors[case]
    verdict = judged.oracles[data, record]
    assert (verdict.dss.error, verdict.bc.error) == (None, None), verdict
    hashes_hold = verdict.dss.covered and all(t[2] for t in verdict.dss.timestamps)
    assert hashes_hold == (expected == "valid"), verdict.dss
    assert (verdict.bc.present and verdict.bc.chained) == (expected == "valid"), verdict.bc


def test_dss_leaves_a_record_without_the_tsa_s_revocation_data_indeterminate(
    judged: Judged,
) -> None:
    # What DSS first refused of ours: a bare token. Offline, nothing says the TSA certificate
    # was not revoked, so the hash layer holds and the timestamp stays inconclusive.
    verdict = judged.oracles[judged.docs[0], judged.records[0, "bare"]]
    assert verdict.dss.covered, verdict.dss
    assert (verdict.dss.indication, verdict.dss.sub_indication) == (
        "INDETERMINATE",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    ), verdict.dss
    assert verdict.bc.accepted, verdict.bc  # Bouncy Castle checks no revocation at all


def test_dss_passes_an_archived_pdf_with_its_evidence_record(judged: Judged) -> None:
    [signature] = judged.ahead[0].signatures
    assert (signature.indication, signature.level) == ("TOTAL_PASSED", "PAdES-BASELINE-LTA")
    assert signature.evidence_records == (("PASSED", None),), signature


def test_dss_as_of_30_years_ahead_wants_a_renewal_by_a_tsa_valid_then(judged: Judged) -> None:
    # Every timestamp of the record (and of the PDF) is by the first development TSA, whose
    # certificate ends 10 years after the PKI was made: as of 30 years ahead DSS finds the
    # evidence record attached to the signature but inconclusive, and the signature with it.
    # That is the expiry a renewal by the archive TSA prevents (next test).
    [signature] = judged.ahead[30].signatures
    assert signature.evidence_records == (("INDETERMINATE", "OUT_OF_BOUNDS_NOT_REVOKED"),)
    assert (signature.indication, signature.sub_indication) == (
        "INDETERMINATE",
        "OUT_OF_BOUNDS_NO_POE",
    ), signature


def test_dss_as_of_30_years_ahead_passes_a_record_renewed_by_the_archive_tsa(
    judged: Judged,
) -> None:
    # Renewed by the second development TSA (45 years) while the first was valid: DSS takes the
    # evidence record as proof that the PDF existed while its signer's and TSA's certificates
    # were valid, and the signature passes although every one of them has long expired.
    now = judged.oracles[judged.docs[0], judged.records[0, "archive-tsa"]]
    assert now.bc.accepted, now.bc
    assert _dss_accepts(now), now.dss
    [signature] = judged.archive_tsa.signatures
    assert signature.evidence_records == (("PASSED", None),), signature
    assert (signature.indication, signature.level) == ("TOTAL_PASSED", "PAdES-BASELINE-LTA"), (
        signature
    )
