"""The name and integer-array readers verification installs (archive.sign.pdf_tokens) give
exactly pyHanko's object, stream position and error, on edge cases and random input."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import pytest
from pyhanko.pdf_utils import generic

import archive.sign  # noqa: F401 - installs the readers
from archive.sign import pdf_tokens

NAMES = [
    b"/Type ",
    b"/Type/Page",
    b"/W[",
    b"/ ",  # the empty name
    b"/A#20B ",  # an escape: decoded by pyHanko
    b"/A#2",  # an unterminated escape
    b"/A\x80B ",  # a byte that must be escaped
    b"/A\x0bB ",  # not PDF whitespace, so part of the name: refused
    b"/Abc",  # ends with the stream
    b"/Abc%comment\n",
    b"/Abc>>",
    b"/Ab(c) ",
    b"Type ",  # no slash
]
ARRAYS = [
    b"[]",
    b"[ ]",
    b"[1 2 3]",
    b"[0 [ 0 401 460 ]\n 16 25 636 31 [ 531 318 ] ]",  # a font's /W
    b"[1[2]3]",
    b"[[]]",
    b"[007 0010]",
    b"[1 2",  # never closed
    b"[1 2 ]]",
    b"[1 0 R]",  # a reference
    b"[1 0 R ]",
    b"[+1 -2]",
    b"[1.5 2.]",
    b"[1-2]",
    b"[1 /Name]",
    b"[1 %comment\n 2]",
    b"[1\x0b2]",  # not PDF whitespace
    b"[[1 [2]]]",  # two levels deep: pyHanko's
    b"[1 (s)]",
    b"[ 1 <41> ]",
    b"[1\x002\t3\x0c4\r5\n6]",
]


def _read(read: Callable[..., Any], data: bytes, at: int, *args: Any) -> tuple[object, ...]:
    stream = io.BytesIO(data)
    stream.seek(at)
    try:
        value = read(stream, *args)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return (type(e), str(e))
    return (_describe(value), stream.tell())


def _describe(value: Any) -> object:
    """Type, value and container reference, all the way down."""
    if isinstance(value, list):
        inner: object = [_describe(v) for v in value]
    else:
        inner = value
    return (type(value), inner, getattr(value, "container_ref", None))


def _random(alphabet: bytes, start: bytes, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [
        start + bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        for _ in range(count)
    ]


@pytest.mark.parametrize(
    "data", NAMES + _random(b"AZaz09#/ \n\x00()<>[]%\x80\x0b", b"/", 300, seed=15)
)
def test_the_name_reader_gives_pyhankos_object_position_and_error(data: bytes) -> None:
    whole = b"<< " + data
    ours = _read(pdf_tokens.read_name, whole, 3)
    assert ours == _read(pdf_tokens._ORIGINAL_NAME, whole, 3)


@pytest.mark.parametrize(
    "data", ARRAYS + _random(b"0123456789  [[]]]\n\x00R./+-%\x0b", b"[", 400, seed=16)
)
def test_the_array_reader_gives_pyhankos_object_position_and_error(data: bytes) -> None:
    whole = b"1 0 obj " + data + b" endobj"
    container = generic.Reference(1, 0)
    ours = _read(pdf_tokens.read_array, whole, 8, container)
    assert ours == _read(pdf_tokens._ORIGINAL_ARRAY, whole, 8, container)


def test_the_readers_are_installed_and_pyhanko_parses_through_them() -> None:
    assert generic.NameObject.read_from_stream is pdf_tokens.read_name
    assert generic.ArrayObject.read_from_stream is pdf_tokens.read_array
    data = io.BytesIO(b"<< /W [0 [1 2] 3] /T /Font >>")
    parsed: Any = generic.read_object(data, generic.Reference(1))
    assert parsed == {"/W": [0, [1, 2], 3], "/T": "/Font"}
