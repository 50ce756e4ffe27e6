"""The transit layout of the header's wrapped-key field is read before anything is authenticated:
every hostile length must be refused there, before a call to the engine."""

from __future__ import annotations

import pytest

from archive.core.errors import EnvelopeIntegrityError
from archive.seal.transit import decode_wrapped, encode_wrapped
from archive.seal.transit_client import ciphertext_version

CIPHERTEXT = "vault:v7:" + "A" * 80
WRAPPED = bytes(range(40))


def test_round_trip_and_version() -> None:
    assert decode_wrapped(encode_wrapped(CIPHERTEXT, WRAPPED)) == (CIPHERTEXT, WRAPPED)
    assert ciphertext_version(CIPHERTEXT) == 7


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01",
        encode_wrapped(CIPHERTEXT, WRAPPED)[:-1],  # cut
        encode_wrapped(CIPHERTEXT, WRAPPED) + b"\x00",  # extended
        b"\x02" + encode_wrapped(CIPHERTEXT, WRAPPED)[1:],  # unknown layout
        b"\x01\xff\xff" + CIPHERTEXT.encode() + WRAPPED,  # length past the end
        encode_wrapped("vault:v1:" + "A" * 4, WRAPPED).replace(b"AAAA", "Ä".encode() + b"AA"),
    ],
)
def test_hostile_fields_are_refused(blob: bytes) -> None:
    with pytest.raises(EnvelopeIntegrityError):
        decode_wrapped(blob)


@pytest.mark.parametrize("text", ["vault:v0:AAAA", "vault:1:AAAA", "vault:v1:", "v1:AAAA", "x" * 9])
def test_malformed_ciphertexts_are_refused(text: str) -> None:
    with pytest.raises(EnvelopeIntegrityError):
        ciphertext_version(text)
