"""The two library speed-ups verification installs give exactly the libraries' own answers:
pyHanko's hex-string reader (archive.render.hex_strings) and asn1crypto's name-value
preparation (archive.sign.name_prep), on edge cases and random input."""

from __future__ import annotations

import io
import random

import pytest
from asn1crypto import x509
from pyhanko.pdf_utils import generic

import archive.render
import archive.sign  # noqa: F401 - installs the name preparation
from archive.render import hex_strings
from archive.sign import name_prep

EDGE = [
    b"<>",
    b"<4142>",
    b"<414>",  # odd: a final 0 is assumed
    b"< 41\n42\r\t\x0c\x0043 >",
    b"<41%comment\n42>",  # pyHanko skips a comment inside, so must we
    b"<41G2>",  # not hex
    b"<4142",  # never closed
    b"<41 42",
    b"<4142>>",  # a dictionary end follows
    b"<feFF00>",
    b"<" + b"a1" * 20000 + b">",  # a signature's /Contents
]


def _read(reader: object, data: bytes, at: int) -> tuple[object, int | None]:
    stream = io.BytesIO(data)
    stream.seek(at)
    try:
        value = reader(stream)  # type: ignore[operator]
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return (type(e), str(e)), None
    return (type(value), value.original_bytes), stream.tell()


def _random_cases(count: int) -> list[bytes]:
    rng = random.Random(15)
    alphabet = b"0123456789abcdefABCDEF \n\r\t\x0c\x00%>G<("
    return [
        b"<" + bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        for _ in range(count)
    ]


@pytest.mark.parametrize("data", EDGE + _random_cases(400))
def test_the_hex_reader_gives_pyhankos_object_position_and_error(data: bytes) -> None:
    prefix = b"1 0 obj "  # not at the start of the stream
    whole = prefix + data + b" endobj"
    ours = _read(hex_strings.read_hex_string, whole, len(prefix))
    theirs = _read(hex_strings._ORIGINAL, whole, len(prefix))
    assert ours == theirs


def test_the_hex_reader_is_what_pyhanko_parses_with() -> None:
    assert generic.read_hex_string_from_stream is hex_strings.read_hex_string
    value = generic.read_object(io.BytesIO(b"<4142 43>"), container_ref=None)  # type: ignore[arg-type]
    assert isinstance(value, generic.ByteStringObject | generic.TextStringObject)
    assert value.original_bytes == b"ABC"


NAMES = [
    "EMR Dev Issuing CA",
    "  Bệnh viện   Đa khoa \u00ad Tỉnh ",
    "Chứng thư đã thu hồi",
    "TAB\there\nnew line",
    "ZERO\u200bWIDTH",
    "\uff26\uff35\uff2c\uff2c",  # fullwidth letters
    "",
]


@pytest.mark.parametrize("value", NAMES)
def test_name_preparation_equals_asn1cryptos(value: str) -> None:
    assert name_prep.ldap_string_prep(None, value) == name_prep._ORIGINAL(None, value)


def test_names_compare_as_before_with_the_cache_warm() -> None:
    a = x509.Name.build({"common_name": "EMR  Dev CA", "organization_name": "Sở Y tế"})
    b = x509.Name.build({"common_name": "emr dev ca", "organization_name": "SỞ Y TẾ"})
    c = x509.Name.build({"common_name": "EMR Dev CB", "organization_name": "Sở Y tế"})
    for _ in range(3):  # cold, then warm
        assert a == b
        assert a != c
        assert a.hashable == b.hashable != c.hashable
