"""Every time a DER value carries, wherever it sits: the breakpoints of a cached path validation
(:mod:`archive.sign.path_cache`).

Walked on the encoding, not on asn1crypto's typed structures, so no field can be missed: each
UTCTime and GeneralizedTime at any depth, inside OCTET and BIT STRINGs that hold DER (an OCSP
response's basic response, extension values such as a CRL entry's invalidity date) and
implicitly tagged values that read as a time. More times than the library compares with only
make the cache's intervals smaller; never fewer.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from threading import Lock
from typing import Final

from asn1crypto import core, parser

_DEPTH: Final = 24
_LIMIT: Final = 4096  # distinct certificates, OCSP responses and CRLs met
_KNOWN: dict[bytes, frozenset[datetime]] = {}
_LOCK = Lock()
_TIME_LIKE: Final = re.compile(rb"\d{10,14}(\.\d+)?(Z|[+-]\d{4})")


def times_in(der: bytes) -> frozenset[datetime]:
    """Every time in ``der`` (kept per process by the DER's SHA-256: the same certificates and
    revocation data come with every document of a batch)."""
    digest = hashlib.sha256(der).digest()
    with _LOCK:
        known = _KNOWN.get(digest)
    if known is not None:
        return known
    found: set[datetime] = set()
    _walk(der, found, 0)
    with _LOCK:
        if len(_KNOWN) >= _LIMIT:
            _KNOWN.clear()
        _KNOWN[digest] = frozenset(found)
    return frozenset(found)


def _walk(data: bytes, found: set[datetime], depth: int) -> bool:
    """Collect the times of the DER values in ``data``; False if it is not all DER."""
    if depth > _DEPTH:
        return False
    pointer, end = 0, len(data)
    while pointer < end:
        try:
            info, pointer = parser._parse(data, end, pointer)
        except (ValueError, TypeError, IndexError):
            return False
        class_, method, tag, _, contents, _ = info
        if method == 1:
            _walk(contents, found, depth + 1)
        elif class_ == 0 and tag in (23, 24):
            _add_time(contents, found)
        elif class_ == 0 and tag in (3, 4):
            _walk(contents[1:] if tag == 3 else contents, found, depth + 1)
        elif class_ != 0 and _TIME_LIKE.fullmatch(contents):
            _add_time(contents, found)
    return True


def _add_time(contents: bytes, found: set[datetime]) -> None:
    for kind in (core.UTCTime, core.GeneralizedTime):
        try:
            value = kind(contents=contents).native
        except (ValueError, TypeError):
            continue
        if isinstance(value, datetime) and value.tzinfo is not None:
            found.add(value)
