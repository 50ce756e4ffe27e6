"""Signed documents altered to fool a validator: what the signing and verification tests feed in.

Each builder takes an :class:`Attack` (the PKI, the original PDF and its genuine signed copy) and
returns forged bytes: an incremental update that changes the page or the embedded data, an edited
byte range, a cut-off revision, or a signature made with pyHanko directly, bypassing the signing
stage's refusals. The hostile-structure builders (a shadowed page tree, overlapping byte ranges, a
duplicated document timestamp, an xref that loops or points nowhere, a page tree whose /Kids or
/Parent entries run in a circle, a CMS blob that is empty, foreign or carries two signer infos, a
/SubFilter no validator knows) follow pdf-insecurity.org's and pyHanko's diff-analysis
attack classes, by byte edits of the signed copy. The tests decide which reason code each must
earn.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import cms, pem, x509
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
    "break_startxref",
    "copy_foreign_timestamp",
    "cut_off_document_timestamp",
    "double_signer_info",
    "duplicate_document_timestamp",
    "edit_byte_range",
    "empty_cms",
    "foreign_cms",
    "loop_xref",
    "overlap_byte_range",
    "page_tree_kids_cycle",
    "page_tree_parent_loop",
    "replace_embedded_json",
    "replace_page_content",
    "revise",
    "shadow_replace_pages",
    "sign_directly",
    "unknown_subfilter",
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
    match = _signature_byte_range(attack)
    last = match.group(3)
    shorter = str(int(last) - 6).encode().rjust(len(last))  # same width: offsets stay put
    start = len(attack.document) + match.start(3)
    return attack.signed[:start] + shorter + attack.signed[start + len(last) :]


def cut_off_document_timestamp(attack: Attack) -> bytes:
    first_revision_end = attack.signed.index(b"%%EOF", len(attack.document) + 1) + len(b"%%EOF\n")
    return attack.signed[:first_revision_end]


def shadow_replace_pages(attack: Attack) -> bytes:
    """pdf-insecurity.org's "shadow replace": a later revision points the catalog at a page
    tree of its own, so a lenient viewer shows other content under an intact signature."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page = writer.root["/Pages"]["/Kids"][0].get_object()
        shadow = generic.DictionaryObject(dict(page.items()))  # type: ignore[no-untyped-call]
        shadow["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT ET"))
        shadow_ref = writer.add_object(shadow)
        pages = generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {
                generic.NameObject("/Type"): generic.NameObject("/Pages"),
                generic.NameObject("/Kids"): generic.ArrayObject([shadow_ref]),
                generic.NameObject("/Count"): generic.NumberObject(1),  # type: ignore[no-untyped-call]
            }
        )
        pages_ref = writer.add_object(pages)
        shadow["/Parent"] = pages_ref
        writer.root["/Pages"] = pages_ref
        writer.update_root()  # type: ignore[no-untyped-call]

    return revise(attack.signed, change)


def _pages_node(kids: list[generic.IndirectObject], parent: generic.IndirectObject) -> Any:
    return generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {
            generic.NameObject("/Type"): generic.NameObject("/Pages"),
            generic.NameObject("/Kids"): generic.ArrayObject(kids),
            generic.NameObject("/Count"): generic.NumberObject(len(kids)),  # type: ignore[no-untyped-call]
            generic.NameObject("/Parent"): parent,
        }
    )


def _interpose_pages_node(writer: IncrementalPdfFileWriter, *, back_to_root: bool) -> Any:
    """The root /Pages node gets one child /Pages node holding the first page; ``back_to_root``
    lists the root among that child's /Kids too. Returns the root node (to update)."""
    root_ref = writer.root.raw_get("/Pages")
    root = root_ref.get_object()
    page_ref = root["/Kids"].raw_get(0)
    kids = [page_ref, root_ref] if back_to_root else [page_ref]
    middle_ref = writer.add_object(_pages_node(kids, root_ref))
    page = page_ref.get_object()
    page["/Parent"] = middle_ref
    writer.update_container(page)
    root["/Kids"] = generic.ArrayObject([middle_ref])
    writer.update_container(root)
    return root, middle_ref


def page_tree_kids_cycle(attack: Attack) -> bytes:
    """A later revision's page tree: a /Pages node whose /Kids names its own parent, so a
    reader that walks the tree down never reaches the end."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        _interpose_pages_node(writer, back_to_root=True)

    return revise(attack.signed, change)


def page_tree_parent_loop(attack: Attack) -> bytes:
    """A later revision's page tree whose /Parent chain runs in a circle (root and child name
    each other as parent), so a reader that looks up inherited attributes never stops."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        root, middle_ref = _interpose_pages_node(writer, back_to_root=False)
        root["/Parent"] = middle_ref
        writer.update_container(root)

    return revise(attack.signed, change)


def unknown_subfilter(attack: Attack) -> bytes:
    """The hospital's signature, its /SubFilter renamed to one no standard defines (same length,
    so every offset holds): a validator must not guess which format the CMS follows."""
    signed = attack.signed[len(attack.document) :]
    match = re.search(rb"/SubFilter\s*/ETSI\.CAdES\.detached", signed)
    assert match is not None
    start = len(attack.document) + match.end() - len(b"CAdES.detached")
    return (
        attack.signed[:start] + b"XAdES.detached" + attack.signed[start + len(b"XAdES.detached") :]
    )


def overlap_byte_range(attack: Attack) -> bytes:
    """The signature's second byte range starts inside the first: bytes counted twice."""
    match = _signature_byte_range(attack)
    first, second = int(match.group(1)), match.group(2)
    overlapping = str(first - 64).encode().rjust(len(second))  # same width: offsets stay put
    start = len(attack.document) + match.start(2)
    return attack.signed[:start] + overlapping + attack.signed[start + len(second) :]


def duplicate_document_timestamp(attack: Attack) -> bytes:
    """A second document timestamp field whose value is a copy of the existing one: two
    timestamps that are one, a later revision dressed up as vouched for twice."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        fields = writer.root["/AcroForm"]["/Fields"]
        original = fields[-1].get_object()
        value = original["/V"]
        copy = generic.DictionaryObject(dict(value.items()))  # type: ignore[no-untyped-call]
        twin = generic.DictionaryObject(dict(original.items()))  # type: ignore[no-untyped-call]
        twin["/T"] = generic.TextStringObject("Timestamp-copy")
        twin["/V"] = writer.add_object(copy)
        fields.append(writer.add_object(twin))
        writer.update_container(fields)

    return revise(attack.signed, change)


def copy_foreign_timestamp(attack: Attack, other_signed: bytes) -> bytes:
    """The document timestamp token of another signed document, pasted over this one's."""
    token = _cms_at(other_signed, -1)
    return _splice_contents(attack.signed, -1, token.dump())


def loop_xref(attack: Attack) -> bytes:
    """An incremental update whose cross-reference section names itself as its predecessor."""
    updated = add_page_content(attack)
    startxref: bytes = re.findall(rb"startxref\s+(\d+)", updated)[-1]
    prev = list(re.finditer(rb"/Prev\s+(\d+)", updated))[-1]
    looped = startxref.rjust(len(prev.group(1)))
    assert len(looped) == len(prev.group(1))
    return updated[: prev.start(1)] + looped + updated[prev.end(1) :]


def break_startxref(attack: Attack) -> bytes:
    """The last ``startxref`` points a few bytes off its cross-reference section."""
    match = list(re.finditer(rb"startxref\s+(\d+)", attack.signed))[-1]
    off = str(int(match.group(1)) + 7).encode()
    return attack.signed[: match.start(1)] + off + attack.signed[match.end(1) :]


def empty_cms(attack: Attack) -> bytes:
    """The signature's /Contents left as the zero-filled placeholder."""
    return _splice_contents(attack.signed, 0, b"")


def foreign_cms(attack: Attack) -> bytes:
    """A well-formed CMS object that is no SignedData at all."""
    data = cms.ContentInfo({"content_type": "data", "content": b"not a signature"})
    return _splice_contents(attack.signed, 0, data.dump())


def double_signer_info(attack: Attack) -> bytes:
    """The signature's SignedData carries a second SignerInfo (the first, minus its timestamp):
    which one a validator checks is up to the validator."""
    info = _cms_at(attack.signed, 0)
    signed_data = info["content"]
    first = signed_data["signer_infos"][0]
    keep = ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm")
    twin = cms.SignerInfo({**{k: first[k] for k in keep}, "signature": first["signature"]})
    doubled = cms.SignedData(
        {
            **{k: signed_data[k] for k in ("version", "digest_algorithms", "encap_content_info")},
            "certificates": signed_data["certificates"],
            "signer_infos": [first, twin],
        }
    )
    forged = cms.ContentInfo({"content_type": "signed_data", "content": doubled})
    return _splice_contents(attack.signed, 0, forged.dump())


_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f]{1000,})>")


def _splice_contents(pdf: bytes, index: int, der: bytes) -> bytes:
    """Put ``der`` into the ``index``-th signature's /Contents placeholder, zero-padded."""
    match = list(_CONTENTS.finditer(pdf))[index]
    width = len(match.group(1))
    hexed = der.hex().encode()
    assert len(hexed) <= width, "the forged CMS does not fit the placeholder"
    return pdf[: match.start(1)] + hexed.ljust(width, b"0") + pdf[match.end(1) :]


def _cms_at(pdf: bytes, index: int) -> cms.ContentInfo:
    raw = bytes.fromhex(list(_CONTENTS.finditer(pdf))[index].group(1).decode())
    return cms.ContentInfo.load(raw, strict=False)  # not strict: the zero padding follows


def _signature_byte_range(attack: Attack) -> re.Match[bytes]:
    signed = attack.signed[len(attack.document) :]
    match = re.search(rb"/ByteRange \[0 (\d+) (\d+) (\d+)\]", signed)
    assert match is not None
    return match


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
