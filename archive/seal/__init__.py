"""Seal: bytes and an object identity in, a sealed object out (and back).

zstd, then AES-256-GCM in frames under a fresh data key per object, the data key wrapped (RFC 3394)
by the current key-encryption key of a :class:`KeyProvider`. The header carries the KEK id and
version, the wrapped key and a key commitment; every frame's AAD binds the header, the object's
identity and its position, so a changed, cut, extended, reordered or moved object does not open.
"""

from archive.seal.envelope import (
    MAGIC,
    ObjectIdentity,
    read_header,
    seal,
    seal_stream,
    unseal,
    unseal_stream,
    unseal_to_path,
)
from archive.seal.keys import (
    KEKS_FILE,
    PSEUDONYM_FILE,
    KekRef,
    KeyProvider,
    LocalKeyring,
    Pseudonymizer,
    WrappedKey,
)

__all__ = [
    "KEKS_FILE",
    "MAGIC",
    "PSEUDONYM_FILE",
    "KekRef",
    "KeyProvider",
    "LocalKeyring",
    "ObjectIdentity",
    "Pseudonymizer",
    "WrappedKey",
    "read_header",
    "seal",
    "seal_stream",
    "unseal",
    "unseal_stream",
    "unseal_to_path",
]
