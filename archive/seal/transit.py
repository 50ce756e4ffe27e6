"""Key-encryption keys in an OpenBao/Vault transit engine, which never releases them.

Every object still gets its own random data key (:mod:`.envelope`, unchanged). Asking the engine
to wrap each one would cost a round trip per object (10,000 a night, and as many again for every
verification pass), so the engine issues a **batch key** instead (``transit/datakey/plaintext``):
a fresh 256-bit key that the process keeps in memory for at most ``batch_key_objects`` objects
and ``batch_key_ttl_s`` seconds, while the engine's encryption of it goes into every header.
The header's wrapped key (format version 1 of the envelope, unchanged) then holds::

    1   0x01        layout of this field
    2   n           length of the transit ciphertext
    n   ciphertext  the batch key encrypted by the transit key ("vault:v<version>:...")
    40  RFC 3394    the object's data key wrapped by the batch key

and the header's KEK reference is ``transit:<key>`` at the transit key's version. Opening needs
the engine once per batch key (cached as long), so reading back a night costs a few round trips.
A batch key's exposure is that of the local keyring's KEK today (process memory), bounded to one
batch; the transit key itself never leaves the engine. After ``keys rotate`` a running process
takes a new batch key under the new version within ``batch_key_ttl_s``.

Objects sealed before the switch from the local keyring name its KEK id; those KEK versions were
imported encrypted by the transit key (:mod:`.transit_state`) and open here, through the engine.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import keywrap

from archive.core.errors import EnvelopeIntegrityError, UnknownKeyError
from archive.seal.keys import KEY_BYTES, KekRef, WrappedKey
from archive.seal.pseudonyms import SecretPseudonyms
from archive.seal.transit_client import TransitClient, ciphertext_version

TRANSIT_PREFIX = "transit:"
_LAYOUT = 1
_HEAD = struct.Struct(">BH")
_WRAPPED_DEK = KEY_BYTES + 8
_READ_CACHE = 4096  # unwrapped batch keys kept: a night's worth of batches many times over


def encode_wrapped(ciphertext: str, wrapped_dek: bytes) -> bytes:
    raw = ciphertext.encode("ascii")
    return _HEAD.pack(_LAYOUT, len(raw)) + raw + wrapped_dek


def decode_wrapped(blob: bytes) -> tuple[str, bytes]:
    """Split the header's wrapped-key field; unauthenticated yet, so every length is checked."""
    if len(blob) < _HEAD.size:
        raise EnvelopeIntegrityError("the transit wrapped key is truncated")
    layout, length = _HEAD.unpack_from(blob)
    if layout != _LAYOUT or len(blob) != _HEAD.size + length + _WRAPPED_DEK:
        raise EnvelopeIntegrityError("the transit wrapped key has an unknown layout or length")
    raw = blob[_HEAD.size : _HEAD.size + length]
    if not raw.isascii():
        raise EnvelopeIntegrityError("the transit ciphertext is not ASCII")
    return raw.decode("ascii"), blob[_HEAD.size + length :]


@dataclass(slots=True)
class _BatchKey:
    key: bytes = field(repr=False)
    ciphertext: str
    version: int
    uses_left: int
    expires: float


class TransitKeyring(SecretPseudonyms):
    """A :class:`~archive.seal.keys.ArchiveKeys` whose KEK is a transit key.

    Build with :func:`archive.seal.providers.open_keys`. Safe to share between threads: the
    store's upload threads seal concurrently and take turns only to replace a batch key.
    """

    def __init__(
        self,
        *,
        client: TransitClient,
        pseudonym_secret: bytes,
        legacy_kek_id: str | None = None,
        legacy_versions: dict[int, str] | None = None,
        batch_objects: int,
        batch_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(pseudonym_secret)
        self._client = client
        self.kek_id = TRANSIT_PREFIX + client.key
        self._legacy_id = legacy_kek_id
        self._legacy_sealed = dict(legacy_versions or {})
        self._legacy_open: dict[int, bytes] = {}
        self._batch_objects, self._ttl, self._clock = batch_objects, batch_ttl_s, clock
        self._lock = threading.Lock()
        self._batch: _BatchKey | None = None
        self._opened: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self.round_trips = 0  # engine calls for data keys, for the benchmark and the tests

    # --- KeyProvider -----------------------------------------------------------------------------

    def current(self) -> KekRef:
        return KekRef(self.kek_id, self._client.latest_version())

    def wrap(self, data_key: bytes) -> WrappedKey:
        if len(data_key) != KEY_BYTES:
            raise ValueError(f"data keys are {KEY_BYTES} bytes, got {len(data_key)}")
        batch = self._take_batch_key()
        wrapped = encode_wrapped(batch.ciphertext, keywrap.aes_key_wrap(batch.key, data_key))
        return WrappedKey(KekRef(self.kek_id, batch.version), wrapped)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        ref = wrapped.kek
        if ref.kek_id == self.kek_id:
            ciphertext, wrapped_dek = decode_wrapped(wrapped.wrapped)
            if ciphertext_version(ciphertext) != ref.version:
                raise EnvelopeIntegrityError(
                    f"the header names {ref.kek_id} v{ref.version} but its wrapped key was made "
                    "under another version: the header was altered"
                )
            return _unwrap(self._open_batch_key(ciphertext), wrapped_dek, ref)
        if ref.kek_id == self._legacy_id and ref.version in self._legacy_sealed:
            return _unwrap(self._legacy_kek(ref.version), wrapped.wrapped, ref)
        held = f"{self.kek_id}" + (f" and {self._legacy_id} (imported)" if self._legacy_id else "")
        raise UnknownKeyError(
            f"KEK {ref.kek_id} v{ref.version} is not held by the transit keyring ({held}): "
            "import the local keyring it was sealed with (`keys init`) or restore it"
        )

    def rotate(self) -> KekRef:
        """A new transit key version; this process drops its batch key, others within the TTL."""
        version = self._client.rotate()
        with self._lock:
            self._batch = None
        return KekRef(self.kek_id, version)

    # --- batch keys ------------------------------------------------------------------------------

    def _take_batch_key(self) -> _BatchKey:
        with self._lock:
            batch, now = self._batch, self._clock()
            if batch is None or batch.uses_left <= 0 or now >= batch.expires:
                key, ciphertext = self._client.data_key()
                self.round_trips += 1
                batch = _BatchKey(
                    key=key,
                    ciphertext=ciphertext,
                    version=ciphertext_version(ciphertext),
                    uses_left=self._batch_objects,
                    expires=now + self._ttl,
                )
                self._batch = batch
            batch.uses_left -= 1
            return batch

    def _open_batch_key(self, ciphertext: str) -> bytes:
        now = self._clock()
        with self._lock:
            hit = self._opened.get(ciphertext)
            if hit is not None and now < hit[1]:
                self._opened.move_to_end(ciphertext)
                return hit[0]
        # Outside the lock: a slow engine must not stall threads whose keys are cached.
        key = self._client.decrypt(ciphertext)
        self.round_trips += 1
        if len(key) != KEY_BYTES:
            raise EnvelopeIntegrityError("the transit engine returned a batch key of wrong length")
        with self._lock:
            self._opened[ciphertext] = (key, now + self._ttl)
            while len(self._opened) > _READ_CACHE:
                self._opened.popitem(last=False)
        return key

    def _legacy_kek(self, version: int) -> bytes:
        kek = self._legacy_open.get(version)
        if kek is None:
            kek = self._client.decrypt(self._legacy_sealed[version])
            self._legacy_open[version] = kek
        return kek

    def __repr__(self) -> str:
        return f"TransitKeyring({self._client.url!r}, {self.kek_id})"


def _unwrap(kek: bytes, wrapped: bytes, ref: KekRef) -> bytes:
    try:
        return keywrap.aes_key_unwrap(kek, wrapped)
    except (keywrap.InvalidUnwrap, ValueError) as e:
        raise EnvelopeIntegrityError(
            f"the data key does not unwrap under KEK {ref.kek_id} v{ref.version}: the object was "
            "altered or sealed with another key store"
        ) from e


def new_pseudonym_secret() -> bytes:
    return os.urandom(KEY_BYTES)
