"""Memoised RFC 4518 string preparation of certificate name values, installed into asn1crypto.

asn1crypto compares and indexes X.509 names (pyHanko's certificate registry, path building,
issuer matching) by their values after RFC 4518 string preparation, computed once per parsed
name object. Every document validated carries its own copies of the same few certificates (its
CMS and its DSS), so the same dozen strings were prepared ~250 times per record: 16 % of full
verification's CPU (profiled, issue #15). ``NameTypeAndValue._ldap_string_prep`` reads nothing but
its argument (asn1crypto 1.5.1), so a cache keyed by the string gives the same answer every time.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from asn1crypto import x509

_ORIGINAL: Final = x509.NameTypeAndValue._ldap_string_prep


@functools.lru_cache(maxsize=4096)
def _prepared(value: str) -> str:
    result: str = _ORIGINAL(None, value)
    return result


def ldap_string_prep(self: Any, string: Any) -> Any:
    """asn1crypto's ``NameTypeAndValue._ldap_string_prep``, cached for strings."""
    if type(string) is not str:
        return _ORIGINAL(self, string)  # whatever asn1crypto does with it, unchanged
    return _prepared(string)


def install() -> None:
    """Make asn1crypto prepare each distinct name value once per process (idempotent)."""
    x509.NameTypeAndValue._ldap_string_prep = ldap_string_prep
