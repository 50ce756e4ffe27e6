"""The search index's seal: a keyed MAC on every indexed row, so an edited index cannot mislead.

The index (:mod:`retrieval.index`) is a copy of catalog rows in a local SQLite file, read by the
portal and the CLI to answer searches and to decide what a grant covers. Anyone who could write
the file could otherwise change what a search shows (a facility, a retention date) or which
grants cover a row. Each row therefore carries HMAC-SHA256 (truncated to 128 bits) of its
manifest's sequence number and its values, under a key derived from the keyring's chain key (the
one that seals the audit log's HEAD), checked on every row a query returns: a row edited or
planted outside the archive fails, and the index is rebuilt from the verified manifests before
the query is answered. Deleted rows are caught by the row count the chain vouches for.

The last verification outcome per encounter (the index's ``verification`` table, folded from the
verification log) is sealed the same way, under the same key with its own label, so that an edited
status ("failed" made "passed") or a row planted for an encounter never verified is not shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Final

_DOMAIN: Final = b"emr-archive/search-index-row/v1"
MAC_BYTES: Final = 16


def index_key(chain_key: bytes) -> bytes:
    """The index's own key, derived from the keyring's chain key (never the chain key itself)."""
    return hmac.digest(chain_key, _DOMAIN, hashlib.sha256)


def row_mac(key: bytes, seq: int, values: Sequence[object]) -> bytes:
    """The MAC of one indexed row: ``seq`` and its values exactly as SQLite stores them."""
    message = json.dumps([seq, *values], separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.digest(key, message, hashlib.sha256)[:MAC_BYTES]


def row_ok(key: bytes, seq: int, values: Sequence[object], mac: object) -> bool:
    return isinstance(mac, bytes) and hmac.compare_digest(row_mac(key, seq, values), mac)


def verification_mac(key: bytes, values: Sequence[object]) -> bytes:
    """The MAC of one ``verification`` row (a label first: never equal to a records row's)."""
    message = json.dumps(["verification", *values], separators=(",", ":"), ensure_ascii=False)
    return hmac.digest(key, message.encode(), hashlib.sha256)[:MAC_BYTES]


def verification_ok(key: bytes, values: Sequence[object], mac: object) -> bool:
    return isinstance(mac, bytes) and hmac.compare_digest(verification_mac(key, values), mac)
