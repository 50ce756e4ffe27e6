"""Faster readers for plain PDF names and plain integer arrays, installed into pyHanko's parser.

pyHanko 0.38 reads both a byte at a time: a name through ``read_until_delimiter`` (a generator
over 1-byte reads) and ``_decode_name`` (a byte loop for ``#`` escapes); an array token by
token, peeking 20 bytes for an indirect reference before every number and reading numbers in
16-byte chunks. The incremental-update analysis of a signature reads every object of the signed
revision (to know every way an object overwritten later could be reached), and an embedded
font's ``/W`` array holds hundreds of integers: that parse was most of the analysis' CPU
(profiled, issue #15 item 2).

Each reader gives the same object, the same stream position and the same errors as pyHanko's:
when the input is in the plain form below it is built in one step, and anything else goes to
pyHanko's own function, which then reads, raises or decides exactly as before:

* a name: ``/`` then printable ASCII other than delimiters and ``#``, ended by PDF whitespace
  or a delimiter (no escapes, nothing pyHanko would refuse or decode);
* an array: ``[``, decimal integers without sign or point, PDF whitespace, and arrays of the
  same one level deep, then ``]`` (no reference, name, real, comment or stray byte).

A stream that is not a ``BytesIO`` always goes to pyHanko. ``tests/unit/archive/
test_pdf_tokens.py`` compares both readers with pyHanko's on edge cases, every object of real
signed documents and random input. pyHanko is pinned at 0.38.0: recheck on any upgrade.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, Final

from pyhanko.pdf_utils import generic

__all__ = ["install", "read_array", "read_name"]

_ORIGINAL_NAME: Final[Callable[[Any], Any]] = generic.NameObject.read_from_stream
_ORIGINAL_ARRAY: Final[Callable[..., Any]] = generic.ArrayObject.read_from_stream

# pyhanko.pdf_utils.misc.PDF_WHITESPACE and PDF_DELIMITERS, no more.
_WS = rb"[ \n\r\t\x0c\x00]"
_END = rb"[ \n\r\t\x0c\x00()<>\[\]{}/%]"
_NAME: Final = re.compile(rb"/[!-~]*?(?=%s)" % _END)
_NAME_BODY: Final = re.compile(rb"[^()<>\[\]{}/%#]*")
_INT = rb"[0-9]+(?=[ \n\r\t\x0c\x00\[\]])"
_ARRAY: Final = re.compile(rb"\[(?:%s|%s|\[(?:%s|%s)*\])*\]" % (_WS, _INT, _WS, _INT))
_TOKEN: Final = re.compile(rb"[0-9]+|\[|\]")


def read_name(stream: Any) -> Any:
    """pyHanko's ``NameObject.read_from_stream`` (the stream stands on the ``/``)."""
    if type(stream) is not io.BytesIO:
        return _ORIGINAL_NAME(stream)
    start = stream.tell()
    with stream.getbuffer() as view:
        found = _NAME.match(view, start)
        if found is None:  # a byte pyHanko refuses or decodes, or the end of the stream
            return _ORIGINAL_NAME(stream)
        body = bytes(view[start + 1 : found.end()])
    if _NAME_BODY.fullmatch(body) is None:  # an escape: pyHanko decodes it
        return _ORIGINAL_NAME(stream)
    stream.seek(found.end())
    return generic.NameObject("/" + body.decode("ascii"))


def read_array(stream: Any, container_ref: Any, in_content_stream: Any = None) -> Any:
    """pyHanko's ``ArrayObject.read_from_stream`` (the stream stands on the ``[``)."""
    mode = generic.ContentOpReading.NO if in_content_stream is None else in_content_stream
    if type(stream) is not io.BytesIO:
        return _ORIGINAL_ARRAY(stream, container_ref, in_content_stream=mode)
    start = stream.tell()
    with stream.getbuffer() as view:
        found = _ARRAY.match(view, start)
        if found is None:
            return _ORIGINAL_ARRAY(stream, container_ref, in_content_stream=mode)
        text = bytes(view[start + 1 : found.end() - 1])
    outer = generic.ArrayObject()
    current = outer
    for token in _TOKEN.findall(text):
        if token == b"[":
            current = generic.ArrayObject()
            current.container_ref = container_ref  # read_object sets it on what it reads
        elif token == b"]":
            outer.append(current)
            current = outer
        else:
            number = generic.NumberObject(int(token))  # type: ignore[no-untyped-call]
            number.container_ref = container_ref
            current.append(number)
    stream.seek(found.end())
    return outer


def install() -> None:
    """Make pyHanko's object parser use :func:`read_name` and :func:`read_array` (idempotent)."""
    generic.NameObject.read_from_stream = staticmethod(read_name)  # type: ignore[method-assign]
    generic.ArrayObject.read_from_stream = staticmethod(read_array)  # type: ignore[method-assign]
