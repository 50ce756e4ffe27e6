"""The incremental-update analysis verification uses (archive.sign.diff_policy, with the token
readers of archive.sign.pdf_tokens installed) judges exactly as pyHanko's standard policy with
pyHanko's own parser: the same modification level, the same changed form fields, the same
refusal, for every signature and document timestamp of genuine records (signed; renewed once;
renewed three times) and of records changed after signing (page content, page tree, overlay,
annotation, form fields, redefined objects, object stream behind an xref stream, a freed
object, an orphan, the DSS); and the map of the paths to each signed object
(archive.sign.ref_paths) is pyHanko's on all of them. Signed by the real signer on the session
stack's PKI and TSA.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffPolicy,
    DiffResult,
    ModificationLevel,
)

from archive.render import Renderer
from archive.sign import (
    DocumentSigner,
    SignedDocument,
    SignerConfig,
    diff_policy,
    pdf_tokens,
    ref_paths,
)
from archive.sign.config import load_certificates
from archive.sign.diff_policy import POLICY
from archive.sign.renew import DocumentRenewer
from infra.pki import DevPki
from infra.settings import AppSettings as Settings
from tests.support import attacks, diff_attacks
from tests.support.fhir import canonical, example_bundle
from tests.support.path_maps import same_as_pyhanko, same_history_as_pyhanko

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def genuine(stack_settings: Settings) -> dict[str, bytes]:
    """A signed record, copies of it renewed once and three times, and a record whose signed
    revision names its form twice."""
    pki = DevPki(pki_dir=stack_settings.pki_dir, port=stack_settings.stack.pki_port)
    bundle = example_bundle()
    created_at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    document = Renderer.create().render(bundle, canonical(bundle), created_at=created_at).pdf
    signer = DocumentSigner.create(SignerConfig.from_settings(stack_settings))
    signed, extra = signer.sign_batch([document, diff_attacks.also_reference_the_form(document)])
    assert isinstance(signed, SignedDocument), signed
    assert isinstance(extra, SignedDocument), extra
    roots = load_certificates(pki.trust_root)
    with DocumentRenewer(tsa_url=pki.tsa_url, tsa_roots=roots) as renewer:
        once = renewer.renew(signed.pdf).pdf
        thrice = renewer.renew(renewer.renew(once).pdf).pdf
    return {
        "signed": signed.pdf,
        "renewed once": once,
        "renewed three times": thrice,
        "form named twice": extra.pdf,
    }


def _on(name: str, build: Callable[[bytes], bytes]) -> Callable[[dict[str, bytes]], bytes]:
    return lambda docs: build(docs[name])


def _page_attack(build: Callable[[attacks.Attack], bytes]) -> Callable[[bytes], bytes]:
    return lambda pdf: build(attacks.Attack(pki=None, document=b"", signed=pdf))  # type: ignore[arg-type]


# name -> (how to build it, whether pyHanko's standard policy accepts every revision at the
# LTA level: the differential comparison is only worth something if both kinds are present)
CASES: dict[str, tuple[Callable[[dict[str, bytes]], bytes], bool]] = {
    "genuine, signed": (lambda docs: docs["signed"], True),
    "genuine, renewed once": (lambda docs: docs["renewed once"], True),
    "genuine, renewed three times": (lambda docs: docs["renewed three times"], True),
    # pyHanko refuses our own signer's output here: the document timestamp's field changes the
    # form, justified on the /AcroForm path but not on the catalog's other one (a check of only
    # what the later revision writes, which is the genuine shape, would accept it)
    "genuine, form named twice": (lambda docs: docs["form named twice"], False),
    "content added to the page": (_on("signed", _page_attack(attacks.add_page_content)), False),
    "page content replaced": (_on("signed", _page_attack(attacks.replace_page_content)), False),
    "page tree replaced (shadow)": (
        _on("signed", _page_attack(attacks.shadow_replace_pages)),
        False,
    ),
    "embedded data redefined": (_on("signed", _page_attack(attacks.replace_embedded_json)), False),
    "overlay drawn over the page": (_on("signed", diff_attacks.overlay_drawing), False),
    "overlay after renewals": (_on("renewed three times", diff_attacks.overlay_drawing), False),
    "annotation added": (_on("signed", diff_attacks.add_annotation), False),
    "annotation added after a renewal": (_on("renewed once", diff_attacks.add_annotation), False),
    "form field added and filled": (_on("signed", diff_attacks.fill_new_field), False),
    "form field value changed": (_on("signed", diff_attacks.change_field_value), False),
    "signature field edited": (_on("signed", diff_attacks.retitle_signature_field), False),
    "font redefined": (_on("signed", diff_attacks.redefine_font_widths), False),
    "object rewritten unchanged": (_on("signed", diff_attacks.redefine_identically), True),
    "page in an object stream": (_on("signed", diff_attacks.update_in_object_stream), False),
    "object freed": (_on("signed", diff_attacks.free_object), False),
    "orphan object": (_on("renewed once", diff_attacks.add_orphan), True),
    # pyHanko's DSS rule asks for streams, not for certificates in them
    "DSS certificates replaced by a stream": (
        lambda docs: diff_attacks.replace_dss_certs(docs["renewed once"], with_stream=True),
        True,
    ),
    "DSS certificates replaced by the page": (
        lambda docs: diff_attacks.replace_dss_certs(docs["renewed once"], with_stream=False),
        False,
    ),
}


@contextlib.contextmanager
def _pyhankos_own_parser() -> Iterator[None]:
    pdf_tokens.uninstall()
    diff_policy.uninstall()
    ref_paths.uninstall()
    try:
        yield
    finally:
        pdf_tokens.install()
        diff_policy.install()
        ref_paths.install()


def _verdicts(pdf: bytes, policy: DiffPolicy, *, times: int = 1) -> list[object]:
    """Per signature (in order) and per call: pyHanko's integrity answer with ``policy``."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    found: list[object] = []
    for _ in range(times):
        for sig in reader.embedded_signatures:
            try:
                sig.compute_integrity_info(diff_policy=policy)
                result = sig.diff_result
            except Exception as e:  # noqa: BLE001 - the error is what is compared
                found.append(("raised", type(e).__name__, str(e)))
                continue
            if isinstance(result, DiffResult):
                found.append((result.modification_level, sorted(result.changed_form_fields)))
            else:
                found.append(("refused", type(result).__name__, str(result)))
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_the_verdicts_equal_pyhankos_standard_policy(name: str, genuine: dict[str, bytes]) -> None:
    build, accepted = CASES[name]
    pdf = build(genuine)
    with _pyhankos_own_parser():
        theirs = _verdicts(pdf, DEFAULT_DIFF_POLICY)
    ours = _verdicts(pdf, POLICY, times=2)  # the second round is answered from the memo
    assert ours == theirs + theirs
    lta: list[object] = [(ModificationLevel.NONE, []), (ModificationLevel.LTA_UPDATES, [])]
    assert all(v in lta for v in theirs) is accepted, theirs


@pytest.mark.parametrize("name", list(CASES))
def test_the_paths_to_each_signed_object_equal_pyhankos(
    name: str, genuine: dict[str, bytes]
) -> None:
    """archive.sign.ref_paths maps every revision of the genuine and the changed records as
    pyHanko does (references, views, paths in order, objects read, errors), and finds each
    object's newest revision as pyHanko does."""
    build, _ = CASES[name]
    pdf = build(genuine)
    theirs = same_as_pyhanko(pdf)
    assert len(theirs) >= 6
    same_history_as_pyhanko(pdf)


def test_every_object_of_a_renewed_record_parses_as_with_pyhankos_parser(
    genuine: dict[str, bytes],
) -> None:
    pdf = genuine["renewed three times"]

    def objects() -> list[object]:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        found: list[object] = []
        for revision in range(reader.xrefs.total_revisions):
            for ref in reader.xrefs.explicit_refs_in_revision(revision):
                value = reader.get_object(ref, revision=revision)  # type: ignore[no-untyped-call]
                found.append((revision, ref.idnum, _plain(value)))
        return found

    with _pyhankos_own_parser():
        theirs = objects()
    assert objects() == theirs
    assert len(theirs) > 60


def _plain(value: object) -> object:
    """Type and value all the way down, with each container's reference."""
    if isinstance(value, generic.StreamObject):
        return ("stream", _plain(dict(value)), value.encoded_data)
    if isinstance(value, dict):
        pairs = [(k, _plain(v)) for k, v in value.items()]
        return (type(value).__name__, pairs, repr(getattr(value, "container_ref", None)))
    if isinstance(value, list):
        items = [_plain(v) for v in value]
        return (type(value).__name__, items, repr(getattr(value, "container_ref", None)))
    if isinstance(value, generic.NullObject):
        return ("null", repr(value.container_ref))
    if isinstance(value, generic.IndirectObject):
        return ("ref", value.idnum, value.generation, repr(value.container_ref))
    return (type(value).__name__, value, repr(getattr(value, "container_ref", None)))
