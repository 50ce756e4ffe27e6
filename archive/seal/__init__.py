"""Seal: bytes and an object identity in, a sealed object out (and back).

zstd, then AES-256-GCM in frames under a fresh data key per object, the data key wrapped (RFC 3394)
by the current key-encryption key of a :class:`KeyProvider`: the local keyring (default), an
OpenBao/Vault transit key (:class:`TransitKeyring`) or AES keys on an HSM
(:class:`archive.seal.hsm.Pkcs11Keyring`, not imported here: python-pkcs11 loads only when the
settings name it), as :func:`open_keys` picks from settings.
The header carries the KEK id and version, the wrapped key and a key commitment; every frame's
AAD binds the header, the object's identity and its position, so a changed, cut, extended,
reordered or moved object does not open.
"""

from archive.seal.envelope import (
    SealInfo,
    UnsealInfo,
    read_header,
    seal,
    seal_stream,
    unseal,
    unseal_stream,
    unseal_to_path,
)
from archive.seal.frames import ObjectIdentity
from archive.seal.header import MAGIC, SealHeader
from archive.seal.keyfiles import KEKS_FILE, PSEUDONYM_FILE
from archive.seal.keyring import LocalKeyring
from archive.seal.keys import ArchiveKeys, KekRef, KeyProvider, WrappedKey
from archive.seal.providers import init_keys, open_keys
from archive.seal.pseudonyms import Pseudonymizer
from archive.seal.shape import check_shape
from archive.seal.transit import TransitKeyring

__all__ = [
    "KEKS_FILE",
    "MAGIC",
    "PSEUDONYM_FILE",
    "ArchiveKeys",
    "KekRef",
    "KeyProvider",
    "LocalKeyring",
    "ObjectIdentity",
    "Pseudonymizer",
    "SealHeader",
    "SealInfo",
    "TransitKeyring",
    "UnsealInfo",
    "WrappedKey",
    "check_shape",
    "init_keys",
    "open_keys",
    "read_header",
    "seal",
    "seal_stream",
    "unseal",
    "unseal_stream",
    "unseal_to_path",
]
