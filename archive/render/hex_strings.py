"""A faster reader for PDF hexadecimal strings, installed into pyHanko's object parser.

pyHanko 0.38 reads a ``<...>`` string one byte at a time through a generator (``read_tokens`` +
``read_non_whitespace``): a signature's ``/Contents`` (tens of kilobytes of hex) costs ~0.5 ms per
read, and validating one archived record read such strings ~36 times (every signature field,
every reader, every revision) — a fifth of full verification's CPU time (profiled, issue #15).

:func:`read_hex_string` gives the same object, the same stream position and the same errors:
when the string is plain hex digits and PDF whitespace up to ``>``, it is decoded in one step;
anything else (a comment, a stray character, no ``>`` before the end, a stream that is not a
``BytesIO``) goes to pyHanko's own function, which then raises or decides exactly as before.
``tests/unit/archive/test_hex_strings.py`` compares both on edge cases and random input.
"""

from __future__ import annotations

import binascii
import io
import re
from typing import Any, Final

from pyhanko.pdf_utils import generic

_ORIGINAL: Final = generic.read_hex_string_from_stream
# Hex digits and PDF whitespace (pyhanko.pdf_utils.misc.PDF_WHITESPACE), then the closing ">".
_PLAIN = re.compile(rb"[0-9A-Fa-f \n\r\t\f\x00]*>")
_WHITESPACE: Final = b" \n\r\t\f\x00"


def read_hex_string(stream: Any) -> generic.ByteStringObject | generic.TextStringObject:
    """pyHanko's ``read_hex_string_from_stream`` (the stream stands on the opening ``<``)."""
    if type(stream) is not io.BytesIO:
        return _ORIGINAL(stream)
    start = stream.tell()
    with stream.getbuffer() as view:
        found = _PLAIN.match(view, start + 1)
        if found is None or view[start] != ord("<"):
            return _ORIGINAL(stream)
        digits = bytes(view[start + 1 : found.end() - 1]).translate(None, _WHITESPACE)
    if len(digits) % 2:
        digits += b"0"  # PDF 32000-1 7.3.4.3: a final odd digit is followed by an assumed 0
    stream.seek(found.end())
    return generic.pdf_string(binascii.unhexlify(digits))


def install() -> None:
    """Make pyHanko's object parser use :func:`read_hex_string` (idempotent)."""
    generic.read_hex_string_from_stream = read_hex_string
