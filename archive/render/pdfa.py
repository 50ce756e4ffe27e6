"""Structural PDF/A-3b checks, and the embedded FHIR Bundle read back out.

Not a full PDF/A validator (none is installable here; veraPDF is not packaged): these are the
properties the archive relies on, checked on the document as it is now, so they work after
signing too (pyHanko's reader resolves the newest incremental update). Every check is a frozen
:class:`PdfaCheck`; :class:`PdfaReport` passes only when it holds checks and all of them pass.
A malformed file fails the check that tripped on it; it never raises.

:mod:`archive.render.pdfa_tools` adds checks by the Debian tools ``qpdf`` and ``pdffonts``; they run
subprocesses, so they stay out of :func:`check_pdfa3b`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from archive.core.errors import PdfaError
from archive.render.page_tree import page_tree_problem
from archive.render.xmp import INFO_TO_XMP, parse_xmp, same_value

FHIR_SUBTYPE = "/application/fhir+json"
XML_SUBTYPE = "/application/xml"  # a QĐ 130 HOSO as the facility sent it
JSON_SUBTYPE = "/application/json"  # a paper record's scan manifest row (archive.intake)
DATA_SUBTYPES = (FHIR_SUBTYPE, XML_SUBTYPE, JSON_SUBTYPE)
AF_RELATIONSHIPS = ("/Source", "/Data")
FORBIDDEN_ACTIONS = frozenset(
    (
        "/JavaScript",
        "/Launch",
        "/Sound",
        "/Movie",
        "/ResetForm",
        "/ImportData",
        "/Hide",
        "/SetOCGState",
        "/Rendition",
        "/Trans",
        "/GoTo3DView",
    )
)


@dataclass(frozen=True, slots=True)
class PdfaCheck:
    name: str
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class PdfaReport:
    checks: tuple[PdfaCheck, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[PdfaCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> str:
        if not self.checks:
            return "no check ran"
        bad = self.failures
        return "; ".join(f"{c.name}: {c.reason}" for c in bad) if bad else "all checks passed"

    def check(self, name: str) -> PdfaCheck:
        return next(c for c in self.checks if c.name == name)


class _CheckFailedError(Exception):
    """A check's reason for failing."""


def read_pdf(pdf: bytes) -> PdfFileReader:
    """The strict reader every check of a document shares (verification parses each PDF once)."""
    return PdfFileReader(BytesIO(pdf), strict=True)


def check_pdfa3b(pdf: bytes, *, reader: PdfFileReader | None = None) -> PdfaReport:
    """Run every structural check; see the module docstring for what is and is not covered.
    ``reader``: :func:`read_pdf` of these very bytes, when the caller parsed them already."""
    checks = [_run("header", lambda: _header(pdf))]
    try:
        reader = reader or read_pdf(pdf)
        root, trailer = reader.root, reader.trailer_view
    except Exception as e:  # noqa: BLE001 - any parse failure is this check's failure
        return PdfaReport((*checks, PdfaCheck("parse", False, f"not a readable PDF: {e}")))
    checks.append(PdfaCheck("parse", True, f"{reader.total_revisions} revision(s)"))
    if reader.encrypted or "/Encrypt" in trailer:
        checks.append(PdfaCheck("encryption", False, "the file is encrypted; PDF/A forbids it"))
        return PdfaReport(tuple(checks))
    checks.append(PdfaCheck("encryption", True, "not encrypted"))
    objects = list(_walk(trailer))
    checks += [
        _run("page-tree", lambda: _page_tree(root)),
        _run("xmp", lambda: _xmp(root)),
        _run("xmp-info", lambda: _xmp_matches_info(root, trailer)),
        _run("output-intent", lambda: _output_intent(root)),
        _run("fonts", lambda: _fonts(objects)),
        _run("attachment", lambda: _attachment(root)),
        _run("actions", lambda: _actions(root, objects)),
        _run("trailer-id", lambda: _trailer_id(trailer)),
    ]
    return PdfaReport(tuple(checks))


def extract_embedded_data(pdf: bytes, *, reader: PdfFileReader | None = None) -> bytes:
    """The embedded source data's bytes (FHIR Bundle JSON or QĐ 130 XML); :class:`PdfaError` if
    absent, ambiguous or damaged. ``reader``: :func:`read_pdf` of these bytes, if at hand."""
    try:
        root = (reader or read_pdf(pdf)).root
        return _fhir_file(root)[1]
    except _CheckFailedError as e:
        raise PdfaError(f"no usable embedded FHIR Bundle: {e}") from None
    except Exception as e:
        raise PdfaError(f"the PDF cannot be read ({e}); it may be damaged or not a PDF") from e


def _run(name: str, check: Callable[[], str]) -> PdfaCheck:
    try:
        return PdfaCheck(name, True, check())
    except _CheckFailedError as e:
        return PdfaCheck(name, False, str(e))
    except Exception as e:  # noqa: BLE001 - a malformed structure fails the check, never crashes
        return PdfaCheck(name, False, f"malformed structure ({type(e).__name__}: {e})")


def _header(pdf: bytes) -> str:
    lines = pdf[:1024].split(b"\n", 2)
    if not re.fullmatch(rb"%PDF-[12]\.\d\r?", lines[0]):
        raise _CheckFailedError("the file does not start with a %PDF-x.y header")
    marker = lines[1] if len(lines) > 1 else b""
    if not (marker.startswith(b"%") and sum(b > 127 for b in marker[1:5]) == 4):
        raise _CheckFailedError("the header is not followed by a comment of four bytes above 127")
    return lines[0].decode().strip()


def _walk(start: Any) -> Iterator[generic.DictionaryObject]:
    """Every dictionary (and stream) reachable from the trailer, each once."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [start]
    while stack:
        node = stack.pop()
        if isinstance(node, generic.IndirectObject):
            key = (node.idnum, node.generation)
            if key in seen:
                continue
            seen.add(key)
            node = _deref(node)
        if isinstance(node, generic.DictionaryObject):
            yield node
            stack.extend(node.raw_get(k) for k in node)
        elif isinstance(node, generic.ArrayObject):
            stack.extend(node.raw_get(i) for i in range(len(node)))


def _deref(node: Any) -> Any:
    return node.get_object()


def _get(container: Any, key: str, default: Any = None) -> Any:
    """``container[key]`` dereferenced, or ``default`` when absent (or null) or not a dict."""
    if not isinstance(container, generic.DictionaryObject) or key not in container:
        return default
    try:
        return container[key]
    except KeyError:  # pyHanko raises it for a null value
        return default


def _array(value: Any) -> list[Any]:
    return [value[i] for i in range(len(value))] if isinstance(value, generic.ArrayObject) else []


def _page_tree(root: generic.DictionaryObject) -> str:
    problem = page_tree_problem(root)
    if problem is not None:
        raise _CheckFailedError(problem)
    return "every page tree node reached once, from the node its /Parent names"


def _xmp(root: generic.DictionaryObject) -> str:
    props = _xmp_props(root)
    part, conformance = props.get("pdfaid:part"), props.get("pdfaid:conformance")
    if part != "3" or conformance != "B":
        raise _CheckFailedError(
            f"XMP declares pdfaid part={part} conformance={conformance}, not 3/B"
        )
    return "pdfaid:part=3, pdfaid:conformance=B"


def _xmp_props(root: generic.DictionaryObject) -> dict[str, str]:
    if "/Metadata" not in root:
        raise _CheckFailedError("no XMP metadata stream in the document catalog")
    stream = _get(root, "/Metadata")
    if not isinstance(stream, generic.StreamObject):
        raise _CheckFailedError("/Metadata is not a stream")
    try:
        return parse_xmp(stream.data)
    except ValueError as e:
        raise _CheckFailedError(f"the XMP metadata is not well-formed: {e}") from None


def _xmp_matches_info(root: generic.DictionaryObject, trailer: Any) -> str:
    props = _xmp_props(root)
    if "/Info" not in trailer:
        return "no Info dictionary; XMP only"
    info = _get(trailer, "/Info")
    compared = []
    for key, prop in INFO_TO_XMP.items():
        if _get(info, key) is None:
            continue
        if prop not in props:
            raise _CheckFailedError(f"Info {key} has no XMP {prop} counterpart")
        if not same_value(key, str(_get(info, key)), props[prop]):
            raise _CheckFailedError(f"Info {key} differs from XMP {prop}")
        compared.append(key)
    for required in ("/Title", "/CreationDate"):
        if required not in compared:
            raise _CheckFailedError(f"the Info dictionary has no {required}")
    return "Info matches XMP for " + ", ".join(compared)


def _output_intent(root: generic.DictionaryObject) -> str:
    intents = [i for i in _array(_get(root, "/OutputIntents")) if _get(i, "/S") == "/GTS_PDFA1"]
    if not intents:
        raise _CheckFailedError("no /GTS_PDFA1 output intent in the document catalog")
    profile = _get(intents[0], "/DestOutputProfile")
    if not isinstance(profile, generic.StreamObject):
        raise _CheckFailedError("the PDF/A output intent has no embedded ICC profile")
    icc = profile.data
    if icc[36:40] != b"acsp" or icc[16:20] != b"RGB ":
        raise _CheckFailedError("the output intent's ICC profile is not an RGB ICC profile")
    label = str(_get(intents[0], "/OutputConditionIdentifier", ""))
    if "sRGB" not in label and b"sRGB" not in icc[:4096]:
        raise _CheckFailedError(f"the output intent is not sRGB (identifier {label!r})")
    return f"GTS_PDFA1 {label}, ICC profile {len(icc)} bytes"


def _fonts(objects: list[generic.DictionaryObject]) -> str:
    fonts = [d for d in objects if _get(d, "/Type") == "/Font"]
    names = []
    for font in fonts:
        subtype, name = _get(font, "/Subtype"), str(_get(font, "/BaseFont", "?"))
        if subtype == "/Type3":
            continue  # glyphs are drawn by the file's own content streams
        if subtype == "/Type0":
            if not _array(_get(font, "/DescendantFonts")):
                raise _CheckFailedError(f"composite font {name} has no descendant font")
            continue  # its CIDFont is a font dictionary of its own in `objects`
        descriptor = _get(font, "/FontDescriptor")
        if not any(_get(descriptor, k) for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            raise _CheckFailedError(f"font {name} ({subtype}) is not embedded")
        names.append(name)
    return f"{len(names)} embedded font program(s): {', '.join(sorted(names)) or 'none'}"


def _attachment(root: generic.DictionaryObject) -> str:
    spec, data = _fhir_file(root)
    relationship = _get(spec, "/AFRelationship")
    if relationship not in AF_RELATIONSHIPS:
        raise _CheckFailedError(
            f"the FHIR Bundle's AFRelationship is {relationship}, not Source or Data"
        )
    return f"{_get(spec, '/UF')} ({len(data)} bytes, AFRelationship {relationship})"


def _fhir_file(root: generic.DictionaryObject) -> tuple[generic.DictionaryObject, bytes]:
    found = []
    for spec in _array(_get(root, "/AF")):
        stream = _get(_get(spec, "/EF"), "/UF") or _get(_get(spec, "/EF"), "/F")
        if isinstance(stream, generic.StreamObject) and _get(stream, "/Subtype") in DATA_SUBTYPES:
            found.append((spec, stream))
    if len(found) != 1:
        raise _CheckFailedError(
            f"the catalog /AF lists {len(found)} source data files (FHIR JSON, QĐ 130 XML or a "
            "scan manifest), "
            "expected 1"
        )
    spec, stream = found[0]
    if _get(spec, "/F") is None or _get(spec, "/UF") is None:
        raise _CheckFailedError("the embedded file's specification lacks /F or /UF")
    data = stream.data
    params = _get(stream, "/Params")
    size, checksum = _get(params, "/Size"), _get(params, "/CheckSum")
    if size is not None and int(size) != len(data):
        raise _CheckFailedError(f"the embedded file is {len(data)} bytes; /Size says {size}")
    if checksum is not None and raw_bytes(checksum) != hashlib.md5(data).digest():  # noqa: S324
        raise _CheckFailedError("the embedded file does not match its /CheckSum (MD5)")
    return spec, data


def _actions(root: generic.DictionaryObject, objects: list[generic.DictionaryObject]) -> str:
    if _get(_get(root, "/Names"), "/JavaScript") is not None:
        raise _CheckFailedError("the document has a JavaScript name tree")
    for d in objects:
        if "/JS" in d or _get(d, "/S") in FORBIDDEN_ACTIONS:
            raise _CheckFailedError(f"the document has a {_get(d, '/S', '/JavaScript')} action")
        if "/AA" in d:
            raise _CheckFailedError("the document has additional actions (/AA)")
    return "no JavaScript, no forbidden or additional actions"


def raw_bytes(value: Any) -> bytes:
    """A PDF string's bytes. pyHanko hands a byte string that happens to decode as text (in
    PDFDocEncoding: most 16-byte MD5 checksums and file ids written as literal strings, as
    pikepdf writes them) as text, and ``bytes()`` of that text fails."""
    if isinstance(value, generic.TextStringObject):
        original: bytes = value.original_bytes
        return original
    return bytes(value)


def _trailer_id(trailer: Any) -> str:
    ids = _array(_get(trailer, "/ID"))
    if len(ids) != 2 or not all(ids):
        raise _CheckFailedError("the trailer has no /ID pair")
    return f"/ID {raw_bytes(ids[0]).hex()}"
