"""PAdES B-LTA signing: the signing stage beside pyHanko's stock ``async_sign_pdf`` per document.

Run by hand: ``python -m bench.bench_sign [--documents 20] [--seed 3]``. Nothing is asserted; the
machine is shared and noisy. Both paths sign the same rendered sample documents against the
development PKI service (a process of its own on this machine) to the same structure: a signature
with a signature timestamp, then the validation data (DSS) and a document timestamp.

* ``stage``: ``DocumentSigner.create`` once, then one ``sign_batch`` (documents concurrently).
* ``stock`` (baseline): one pyHanko ``SimpleSigner`` and one validation context for the whole
  run, ``async_sign_pdf`` with ``use_pades_lta=True`` document after document, as pyHanko's
  documentation signs.

CPU is this process's only (the TSA's work is not in it); wall time includes the TSA round
trips. The last row is the offline validation of the stage's documents (what the verifier pays).
Target (archive/sign/signer.py): ~15 ms CPU per document against ~160-170 ms for the stock path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from asn1crypto import pem, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext

from archive.render import Renderer
from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    TrustPolicy,
    load_signer,
    validate_pdf_signatures,
)
from archive.sign.certificates import cert_sha256
from archive.sources import EncounterBundle, Window, collect
from bench.bench_pki import pki_service
from bench.common import table
from infra.pki import DevPki
from infra.sample.generator import write_sample_export

DAY = date(2026, 11, 22)


@dataclass(frozen=True, slots=True)
class Timing:
    cpu: float
    wall: float
    documents: int

    def cpu_ms(self) -> str:
        return f"{self.cpu * 1000 / self.documents:.1f}"

    def wall_ms(self) -> str:
        return f"{self.wall * 1000 / self.documents:.1f}"

    def rate(self) -> str:
        return f"{self.documents / self.wall:,.1f}/s"


def timed(work: Callable[[], object], documents: int) -> Timing:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return Timing(time.process_time() - cpu, time.perf_counter() - wall, documents)


def sample_documents(count: int, seed: int) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="emr-bench-sign-") as tmp:
        # Some sample encounters close outside the day's window: export more than needed.
        write_sample_export(Path(tmp), encounters=2 * count, seed=seed, day=DAY, bad_share=0)
        found = collect(Path(tmp), window=Window.for_day(DAY))
        bundles = [b for b in found if isinstance(b, EncounterBundle)][:count]
    renderer, created = Renderer.create(), datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    return [renderer.render(b.bundle, b.canonical, created_at=created).pdf for b in bundles]


def _config(pki: DevPki) -> SignerConfig:
    return SignerConfig(
        pkcs12_path=pki.signer.p12,
        password_file=pki.signer.password_file,
        tsa_url=pki.tsa_url,
        trust_roots=(pki.trust_root,),
        tsa_trust_roots=(pki.trust_root,),
    )


def stage(pki: DevPki, pdfs: Sequence[bytes]) -> tuple[Timing, list[SignedDocument], float]:
    """The stage's timing, its signed documents and its TSA requests per document."""
    signer = DocumentSigner.create(_config(pki))
    signer.sign_batch(pdfs[:1])  # first-use costs (imports, caches) out of the timing
    before = signer.timestamp_requests
    outcomes: list[object] = []
    timing = timed(lambda: outcomes.extend(signer.sign_batch(pdfs)), len(pdfs))
    signed = [o for o in outcomes if isinstance(o, SignedDocument)]
    if len(signed) != len(pdfs):
        raise SystemExit(f"the stage failed to sign: {outcomes}")
    return timing, signed, (signer.timestamp_requests - before) / len(pdfs)


def stock(pki: DevPki, pdfs: Sequence[bytes]) -> tuple[Timing, list[bytes]]:
    root = x509.Certificate.load(pem.unarmor(pki.trust_root.read_bytes())[2])
    signer = signers.SimpleSigner.load_pkcs12_data(
        pki.signer.p12.read_bytes(), other_certs=[], passphrase=pki.signer.read_password()
    )

    async def sign_all(documents: Sequence[bytes]) -> list[bytes]:
        context = ValidationContext(trust_roots=[root], allow_fetching=True)
        meta = signers.PdfSignatureMetadata(
            field_name="Signature1",
            subfilter=SigSeedSubFilter.PADES,
            embed_validation_info=True,
            use_pades_lta=True,
            validation_context=context,
        )
        timestamper = HTTPTimeStamper(pki.tsa_url)
        try:
            out = []
            for pdf in documents:
                writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
                signed = await signers.async_sign_pdf(
                    writer, meta, signer=signer, timestamper=timestamper
                )
                out.append(bytes(signed.getvalue()))
            return out
        finally:
            await context.aclose()  # type: ignore[no-untyped-call]

    asyncio.run(sign_all(pdfs[:1]))  # first-use costs out of the timing, as for the stage
    results: list[bytes] = []
    timing = timed(lambda: results.extend(asyncio.run(sign_all(pdfs))), len(pdfs))
    return timing, results


def validation(pki: DevPki, pdfs: Sequence[bytes]) -> Timing:
    root = x509.Certificate.load(pem.unarmor(pki.trust_root.read_bytes())[2])
    signer = load_signer(_config(pki)).certificate
    trust = TrustPolicy(
        signer_roots=(root,), tsa_roots=(root,), hospital_signers=frozenset({cert_sha256(signer)})
    )

    def validate_all() -> None:
        for pdf in pdfs:
            report = validate_pdf_signatures(pdf, trust=trust)
            if not report.passed:
                raise SystemExit(f"a signed document does not validate: {report.reason}")

    return timed(validate_all, len(pdfs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    pdfs = sample_documents(args.documents, args.seed)
    with pki_service() as pki:
        ours, signed, tsa_per_doc = stage(pki, pdfs)
        base, stock_signed = stock(pki, pdfs)
        checked = validation(pki, [s.pdf for s in signed])
        validation(pki, stock_signed[:1])  # the baseline is a real B-LTA signature too
    n = len(pdfs)
    print(f"{n} rendered sample documents (seed {args.seed}), PAdES B-LTA, TSA on loopback\n")
    print(
        table(
            [
                ("step", "CPU ms/doc", "wall ms/doc", "throughput", "baseline", "baseline CPU"),
                (
                    "sign (stage)",
                    ours.cpu_ms(),
                    ours.wall_ms(),
                    ours.rate(),
                    f"{base.rate()} (stock pyHanko)",
                    f"{base.cpu_ms()} ms/doc",
                ),
                ("validate offline", checked.cpu_ms(), checked.wall_ms(), checked.rate(), "", ""),
            ]
        )
    )
    print(
        f"\nthe stage uses {base.cpu / ours.cpu:.1f}x less CPU and {base.wall / ours.wall:.1f}x "
        f"less wall time per document; TSA requests per document: {tsa_per_doc:.0f}"
    )


if __name__ == "__main__":
    main()
