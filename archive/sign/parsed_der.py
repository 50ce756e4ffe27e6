"""Certificates, OCSP responses and CRLs parsed once per thread, not once per document and use.

Every document of a signing batch carries the same certificates (signer, TSA, CA) in each CMS
object and in its DSS, and the same revocation data. pyHanko's ``extract_certificate_info``
copies each certificate out of its CMS on every call (``untag()``: a fresh object, so asn1crypto
parses its extensions and key identifiers again), ~17 times per document, and the DSS's
certificates, OCSP responses and CRLs are parsed afresh three times per document (ours, and
pyHanko's ``read_dss`` and AdES local knowledge, through stand-ins offering only ``load``).
The SHA-256 of what was parsed is noted too: cache keys (archive.sign.path_cache, contexts)
take it instead of asn1crypto's ``dump()``, which walks every parsed child for changes.

Here an object is kept under its type and the SHA-256 of its exact bytes: equal bytes parse to
an equal object, so handing out the kept one changes nothing a caller can see — unless it is
changed in place, which pyHanko and its certificate validator do not do to certificates or
revocation data (they wrap them). asn1crypto parses lazily and is not safe to share between
threads (verification runs records on threads), so each thread keeps its own.
The attack tests are tests/unit/archive/test_parsed_der.py.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Final, TypeVar

from asn1crypto import cms, x509
from asn1crypto.crl import CertificateList
from asn1crypto.ocsp import OCSPResponse
from pyhanko.sign import general
from pyhanko.sign.validation import ades, dss, generic_cms

T = TypeVar("T")

_ORIGINAL: Final = general.extract_certificate_info
# Where pyHanko 0.38 parses a DSS's contents by name, read only as ``<name>.load(data)`` (DSS
# reading, its local knowledge and proofs of existence in AdES): module, name, original.
_PARSERS: Final = tuple(
    (module, name, getattr(module, name))
    for module, name in (
        (dss, "Certificate"),
        (dss, "asn1_ocsp"),
        (dss, "asn1_crl"),
        (ades, "OCSPResponse"),
        (ades, "CertificateList"),
    )
)
_ENTRIES: Final = 256  # certificates and revocation data of a few signers and TSAs
_BYTES: Final = 32 * 1024 * 1024  # per thread: a CRL can weigh megabytes
_MODULES: Final = (general, generic_cms, ades, dss)  # each imported the function by name


class _Kept(threading.local):
    def __init__(self) -> None:
        self.objects: OrderedDict[tuple[type, bytes], tuple[Any, int]] = OrderedDict()
        self.digests: dict[int, tuple[Any, bytes]] = {}  # id(kept object) -> (it, its SHA-256)
        self.size = 0


_KEPT = _Kept()
_ON = [True]


def load(kind: type[T], der: bytes) -> T:
    """``kind.load(der)``, the thread's earlier result for these very bytes when there is one."""
    if not _ON[0]:
        return kind.load(der)  # type: ignore[attr-defined, no-any-return]
    kept = _KEPT
    key = _key(kind, der)
    found = kept.objects.get(key)
    if found is not None:
        kept.objects.move_to_end(key)
        return found[0]  # type: ignore[no-any-return]
    value = kind.load(der)  # type: ignore[attr-defined]
    kept.objects[key] = (value, len(der))
    # Of what dump() gives (``der`` may carry bytes past the value, which load() ignores).
    kept.digests[id(value)] = (value, hashlib.sha256(value.dump()).digest())
    kept.size += len(der)
    while len(kept.objects) > _ENTRIES or kept.size > _BYTES:
        _, (old, size) = kept.objects.popitem(last=False)
        kept.digests.pop(id(old), None)
        kept.size -= size
    return value  # type: ignore[no-any-return]


def digest(value: Any) -> bytes:
    """SHA-256 of ``value.dump()``: noted when :func:`load` parsed it in this thread (asn1crypto's
    ``dump`` walks every parsed child to see whether it changed), else computed."""
    noted = _KEPT.digests.get(id(value))
    if noted is not None and noted[0] is value:
        return noted[1]
    return hashlib.sha256(value.dump()).digest()


def _key(kind: type, der: bytes) -> tuple[type, bytes]:
    return kind, hashlib.sha256(der).digest()


@dataclass(frozen=True, slots=True)
class Der:
    """A DER value in a cache key, by its SHA-256 (:func:`digest`); the value itself is left
    out of comparisons, for whoever needs its bytes."""

    digest: bytes
    value: Any = field(compare=False, hash=False)


def der(value: Any) -> Der:
    return Der(digest(value), value)


def extract_certificate_info(signed_data: cms.SignedData) -> general.SignedDataCerts:
    """pyHanko's ``extract_certificate_info``, its X.509 certificates from :func:`load`."""
    certs = []
    attr_certs = []
    for choice in signed_data["certificates"]:
        if choice.name == "certificate":  # untagged: the chosen value's bytes are the DER
            certs.append(load(x509.Certificate, choice.chosen.dump()))
        elif choice.name == "v2_attr_cert":
            attr_certs.append(choice.chosen.untag())
    signer_info = general.extract_signer_info(signed_data)
    signer_cert, other_certs = general._partition_certs(certs, signer_info)  # type: ignore[no-untyped-call]
    return general.SignedDataCerts(
        signer_cert=signer_cert, other_certs=other_certs, attribute_certs=attr_certs
    )


class _Parsing:
    """Stands for an asn1crypto type where pyHanko only calls its ``load``."""

    def __init__(self, kind: type) -> None:
        self._kind = kind

    def load(self, der: bytes, strict: bool = False) -> Any:
        if strict:
            return self._kind.load(der, strict=True)  # type: ignore[attr-defined]
        return load(self._kind, der)


_STANDINS: Final = {
    "Certificate": _Parsing(x509.Certificate),
    "asn1_ocsp": SimpleNamespace(OCSPResponse=_Parsing(OCSPResponse)),
    "asn1_crl": SimpleNamespace(CertificateList=_Parsing(CertificateList)),
    "OCSPResponse": _Parsing(OCSPResponse),
    "CertificateList": _Parsing(CertificateList),
}


def install() -> None:
    """Parse once per thread from now on (idempotent)."""
    _ON[0] = True
    for module in _MODULES:
        module.extract_certificate_info = extract_certificate_info  # type: ignore[attr-defined]
    for module, name, _ in _PARSERS:
        setattr(module, name, _STANDINS[name])


def uninstall() -> None:
    """Parse every time, as the libraries do (the cold benchmark)."""
    _ON[0] = False
    for module in _MODULES:
        module.extract_certificate_info = _ORIGINAL  # type: ignore[attr-defined]
    for module, name, original in _PARSERS:
        setattr(module, name, original)


def forget() -> None:
    """Drop what this thread keeps (tests)."""
    _KEPT.objects.clear()
    _KEPT.digests.clear()
    _KEPT.size = 0
