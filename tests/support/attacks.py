"""Signed documents altered to fool a validator: what the signing and verification tests feed in.

Each builder takes an :class:`Attack` (the PKI, the original PDF and its genuine signed copy) and
returns forged bytes: an incremental update that changes the page or the embedded data, an edited
byte range, a cut-off revision, or a signature made with pyHanko directly, bypassing the signing
stage's refusals. The tests decide which reason code each must earn.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import pem, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko_certvalidator import ValidationContext

from infra.pki import DevPki

__all__ = [
    "Attack",
    "add_page_content",
    "cut_off_document_timestamp",
    "edit_byte_range",
    "replace_embedded_json",
    "replace_page_content",
    "revise",
    "sign_directly",
]


@dataclass(frozen=True)
class Attack:
    """What a forgery starts from: the PKI (to sign directly), the PDF and its signed copy."""

    pki: DevPki
    document: bytes
    signed: bytes


def revise(pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    assert out.getvalue().startswith(pdf)
    return out.getvalue()


def add_page_content(attack: Attack) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        stream = generic.StreamObject(stream_data=b"q 1 0 0 RG 50 50 400 400 re S Q")
        writer.add_stream_to_page(0, writer.add_object(stream))  # type: ignore[no-untyped-call]

    return revise(attack.signed, change)


def replace_page_content(attack: Attack) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        page = writer.root["/Pages"]["/Kids"][0].get_object()
        stream = generic.StreamObject(stream_data=b"BT ET")
        page["/Contents"] = writer.add_object(stream)
        writer.update_container(page)

    return revise(attack.signed, change)


def replace_embedded_json(attack: Attack) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
        file_spec = names[1].get_object()
        ref = file_spec["/EF"].raw_get("/F")
        old = ref.get_object()
        forged = generic.StreamObject(
            {generic.NameObject(k): v for k, v in old.items() if k not in ("/Length", "/Filter")},
            stream_data=b'{"resourceType":"Bundle","entry":[]}',
        )
        writer.objects[(ref.generation, ref.idnum)] = forged

    return revise(attack.signed, change)


def edit_byte_range(attack: Attack) -> bytes:
    match = re.search(rb"/ByteRange \[0 (\d+) (\d+) (\d+)\]", attack.signed[len(attack.document) :])
    assert match is not None
    last = match.group(3)
    shorter = str(int(last) - 6).encode().rjust(len(last))  # same width: offsets stay put
    start = len(attack.document) + match.start(3)
    return attack.signed[:start] + shorter + attack.signed[start + len(last) :]


def cut_off_document_timestamp(attack: Attack) -> bytes:
    first_revision_end = attack.signed.index(b"%%EOF", len(attack.document) + 1) + len(b"%%EOF\n")
    return attack.signed[:first_revision_end]


def sign_directly(
    attack: Attack,
    label: str,
    *,
    timestamp: bool,
    lta_trusting: Path | None = None,  # a root the signer chains to, for pyHanko's own checks
) -> bytes:
    """Sign with pyHanko itself, bypassing the stage's refusals."""
    credential = attack.pki.credential(label)
    signer = signers.SimpleSigner.load_pkcs12_data(
        credential.p12.read_bytes(), other_certs=[], passphrase=credential.read_password()
    )
    timestamper = HTTPTimeStamper(attack.pki.tsa_url) if timestamp else None
    context = None
    if lta_trusting is not None:
        roots = [_certificate(lta_trusting), _certificate(attack.pki.trust_root)]  # + the TSA's
        context = ValidationContext(trust_roots=roots, allow_fetching=True)
    meta = signers.PdfSignatureMetadata(
        field_name="Signature1",
        subfilter=SigSeedSubFilter.PADES,
        embed_validation_info=context is not None,
        use_pades_lta=context is not None,
        validation_context=context,
    )

    async def sign() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(attack.document))
        try:
            out = await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=timestamper)
            return bytes(out.getvalue())
        finally:
            if context is not None:
                await context.aclose()  # type: ignore[no-untyped-call]

    return asyncio.run(sign())


def _certificate(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])
