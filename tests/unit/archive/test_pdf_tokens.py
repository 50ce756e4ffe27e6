"""The name, array and dictionary readers verification installs (archive.sign.pdf_tokens) give
exactly pyHanko's object, stream position, error and warning, on edge cases and random input."""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Callable
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter

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
    b"[3 0 R 4 0 R]",  # references only
    b"[ 3 0 R\n4 2 R ]",
    b"[3 0 R4 0 R]",  # a digit right after the R
    b"[3 0 R/N]",
    b"[3 0 Rx]",
    b"[0 0 R]",  # object 0: refused
    b"[03 0 R]",
    b"[12345678901 0 R]",  # longer than pyHanko's 20-byte peek
    b"[1234567890 12345 R]",
    b"[3  0 R]",  # two spaces: read by bytes.isspace
    b"[3\x000 R]",  # NUL: PDF whitespace, not isspace
    b"[3 0 R 5]",
    b"[3 0  R]",
    b"[3 0\x0bR]",
    b"[3 0 \x0bR]",
    b"[3 0 R\x0b]",
    b"[5 3 0 R]",
    b"[3 0 R",
]
DICTIONARIES = [
    b"<<>>",
    b"<< >>",
    b"<</Type/Page/Parent 3 0 R/Count 2>>",
    b"<< /Type /Font /W [0 [1 2] 3] /FirstChar 32 /Kids [4 0 R 5 0 R] >>",
    b"<< /A << /B 1 >> /C (s) /D <41> /E true /F null /G 1.5 /H -2 >>",
    b"<< /A 1 /A 2 >>",  # a duplicate key: refused when strict, a warning if not
    b"<< /A 1 %comment\n /B 2 >>",
    b"<< %c\n/A 1>>",
    b"<< /A %c\n 1 >>",
    b"<< /A 1 >x",  # pyHanko reads any byte after the first >
    b"<< /A 1 >",
    b"<< /A 1",
    b"<< /A",
    b"<< /A ",
    b"<< A 1 >>",  # a key that is no name
    b"<< /A#20B 1 /C /D#41 >>",
    b"<< /A\x80 1 >>",
    b"<< /A 0 0 R >>",
    b"<< /A 12345678901 0 R >>",
    b"<< /A 1 0 R2 >>",
    b"<< /A 1 0 Rx >>",
    b"<< /A 1  0 R >>",
    b"<< /A 1 0  R >>",
    b"<< /A 1 0\x0bR >>",  # isspace, not PDF whitespace
    b"<< /A 1 0\x00R >>",  # PDF whitespace, not isspace
    b"<< /A 1 0 \x0bR >>",
    b"<< /A 1\x0b0 R >>",
    b"<< /A 1\x0b >>",
    b"<< /A 1, /B 2 >>",
    b"<< /A 7/B 8>>",
    b"<< /A 7 >>>>",
    b"<< /Length 3 >>\nstream\nabc\nendstream",
    b"<< /Length 4 >> stream\r\nabc\nendstream",  # one byte too long
    b"<< /Length 9 >>\nstream\nabc\nendstream",
    b"<< /Length 3 >>\nstreax",
    b"< /A 1 >>",
    b"<",
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
    """Type, value and container reference, all the way down (keys, handlers, stream data)."""
    if isinstance(value, list):
        inner: object = [_describe(v) for v in value]
    elif isinstance(value, dict):
        inner = [(_describe(k), _describe(v)) for k, v in value.items()]
        if isinstance(value, generic.StreamObject):
            inner = (inner, value.encoded_data)
    elif isinstance(value, generic.IndirectObject):
        inner = (value.idnum, value.generation, id(value.reference.pdf))
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
@pytest.mark.parametrize("mode", list(generic.ContentOpReading))  # a content stream's too
def test_the_array_reader_gives_pyhankos_object_position_and_error(
    data: bytes, mode: generic.ContentOpReading
) -> None:
    whole = b"1 0 obj " + data + b" endobj"
    container = generic.Reference(1, 0)
    ours = _read(pdf_tokens.read_array, whole, 8, container, mode)
    assert ours == _read(pdf_tokens._ORIGINAL_ARRAY, whole, 8, container, mode)


def test_the_readers_are_installed_and_pyhanko_parses_through_them() -> None:
    assert generic.NameObject.read_from_stream is pdf_tokens.read_name
    assert generic.ArrayObject.read_from_stream is pdf_tokens.read_array
    assert generic.DictionaryObject.read_from_stream is pdf_tokens.read_dictionary
    data = io.BytesIO(b"<< /W [0 [1 2] 3] /T /Font /K [3 0 R] /P 3 0 R >>")
    parsed: Any = generic.read_object(data, generic.Reference(1))
    indirect: Any = generic.IndirectObject
    three = indirect(3, 0, None)
    assert parsed == {"/W": [0, [1, 2], 3], "/T": "/Font", "/K": [three], "/P": three}


def _handler(strict: bool) -> Any:
    out = io.BytesIO()
    PdfFileWriter().write(out)  # type: ignore[no-untyped-call]
    return PdfFileReader(out, strict=strict)


HANDLERS = {strict: _handler(strict) for strict in (True, False)}
# (plain, unusual) pieces of an entry: most entries plain, some not
KEYS = ([b"/A", b"/B", b"/Type", b"/"], [b"/A#20", b"/\x80", b"A", b"1"])
GAPS = ([b"", b" ", b"\n", b"\r\n", b"\x00", b"\x0c"], [b"%c\n", b"\x0b", b"%c"])
VALUES = (
    [b"1", b"12", b"007", b"3 0 R", b"/N", b"/", b"[1 2]", b"[3 0 R 4 0 R]", b"<<>>"],
    [
        *(b"3 0 R2", b"3 0 Rx", b"0 0 R", b"3  0 R", b"3\t0 R", b"12345678901 0 R", b"/N#41"),
        *(b"[3 0 R 4]", b"<< /C 4 0 R >>", b"(s)", b"<41>", b"1.5", b"-2", b"+1", b"1,"),
        *(b"true", b"null", b"", b">"),
    ],
)


def _pick(rng: random.Random, pieces: tuple[list[bytes], list[bytes]]) -> bytes:
    return rng.choice(pieces[rng.random() < 0.1])


def _random_dictionaries(count: int, seed: int) -> list[bytes]:
    """Entries built from plain and unusual keys, gaps and values, and random bytes."""
    rng = random.Random(seed)
    built = []
    for _ in range(count):
        entries = b"".join(
            _pick(rng, GAPS) + _pick(rng, KEYS) + _pick(rng, GAPS) + _pick(rng, VALUES)
            for _ in range(rng.randrange(0, 5))
        )
        end = _pick(rng, ([b">>", b" >>"], [b">", b"", b" > >"]))
        built.append(b"<<" + entries + _pick(rng, GAPS) + end)
    return built + _random(b"/AB 0129R<>[]%\n\x00\x0b(#.", b"<<", 200, seed=seed + 1)


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("data", DICTIONARIES + _random_dictionaries(600, seed=17))
def test_the_dictionary_reader_gives_pyhankos_object_position_error_and_warning(
    data: bytes, strict: bool, caplog: pytest.LogCaptureFixture
) -> None:
    whole = b"1 0 obj " + data + b" endobj"
    container = generic.Reference(1, 0, HANDLERS[strict])
    with caplog.at_level(logging.WARNING, logger=generic.logger.name):
        ours = _read(pdf_tokens.read_dictionary, whole, 8, container)
        warned = caplog.messages[:]
        caplog.clear()
        theirs = _read(pdf_tokens._ORIGINAL_DICT, whole, 8, container)
    assert ours == theirs
    assert warned == caplog.messages


@pytest.mark.parametrize("mode", list(generic.ContentOpReading)[1:])
@pytest.mark.parametrize("data", DICTIONARIES)
def test_a_content_streams_dictionary_is_read_as_pyhanko_reads_it(
    data: bytes, mode: generic.ContentOpReading
) -> None:
    whole = b"BDC " + data + b" EMC"
    container = generic.Reference(1, 0, HANDLERS[True])
    ours = _read(pdf_tokens.read_dictionary, whole, 4, container, False, mode)
    assert ours == _read(pdf_tokens._ORIGINAL_DICT, whole, 4, container, False, mode)


def test_pyhankos_readers_come_back_for_comparisons() -> None:
    pdf_tokens.uninstall()
    try:
        assert generic.DictionaryObject.read_from_stream is pdf_tokens._ORIGINAL_DICT
        assert generic.NameObject.read_from_stream is pdf_tokens._ORIGINAL_NAME
    finally:
        pdf_tokens.install()
    assert generic.DictionaryObject.read_from_stream is pdf_tokens.read_dictionary
