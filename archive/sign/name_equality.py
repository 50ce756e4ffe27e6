"""Memoised equality and ``hashable`` of X.509 names, installed into asn1crypto.

pyHanko and pyhanko_certvalidator compare certificate names all the time (which certificate of
a CMS is the signer's, who issued whom, which CRL covers which certificate); asn1crypto compares
two names by their RFC 5280 § 7.1 prepared values, which it computes per parsed name object.
Every document carries its own copies of the same few certificates, so the same pairs of names
were prepared and compared afresh for each: ~8 % of the signature check's CPU once path
answers were kept (issue #15 item 2). ``Name.__eq__`` reads nothing but the two names
(asn1crypto 1.5.1), so its answer for a pair of encodings is kept per process; likewise
``Name.hashable`` (the key pyhanko_certvalidator files every certificate under, recomputed on
each access) per encoding. An exception is raised again every time, never kept.
"""

from __future__ import annotations

from threading import Lock
from typing import Any, Final

from asn1crypto import x509

_ORIGINAL: Final = x509.Name.__eq__
_ORIGINAL_HASHABLE: Final = x509.Name.hashable
_LIMIT: Final = 16384  # pairs of distinct names: a few per certificate the archive meets
_KNOWN: dict[tuple[bytes, bytes], bool] = {}
_HASHABLES: dict[bytes, str] = {}
_LOCK = Lock()


def name_equal(self: Any, other: Any) -> Any:
    """asn1crypto's ``Name.__eq__``, kept per pair of encodings."""
    if not isinstance(other, x509.Name):
        return _ORIGINAL(self, other)
    key = (self.dump(), other.dump())
    with _LOCK:
        known = _KNOWN.get(key)
    if known is not None:
        return known
    answer = _ORIGINAL(self, other)
    with _LOCK:
        if len(_KNOWN) >= _LIMIT:
            _KNOWN.clear()
        _KNOWN[key] = bool(answer)
    return answer


def name_hashable(self: Any) -> str:
    """asn1crypto's ``Name.hashable``, kept per encoding."""
    key = self.dump()
    with _LOCK:
        known = _HASHABLES.get(key)
    if known is not None:
        return known
    answer: str = _ORIGINAL_HASHABLE.fget(self)
    with _LOCK:
        if len(_HASHABLES) >= _LIMIT:
            _HASHABLES.clear()
        _HASHABLES[key] = answer
    return answer


def install() -> None:
    """Make asn1crypto compare and key each distinct name once per process (idempotent)."""
    x509.Name.__eq__ = name_equal
    x509.Name.hashable = property(name_hashable)


def uninstall() -> None:
    """asn1crypto's own comparison back (the cold benchmark)."""
    x509.Name.__eq__ = _ORIGINAL
    x509.Name.hashable = _ORIGINAL_HASHABLE


def forget() -> None:
    with _LOCK:
        _KNOWN.clear()
        _HASHABLES.clear()
