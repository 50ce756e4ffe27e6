"""What a bilevel image in a scan PDF will decode to, read from its own declarations.

Counting an image dictionary's ``/Width`` x ``/Height`` is not enough for the two codecs scanners
use for black-and-white pages: the decoder sizes its buffers from the compressed data's own
declarations, not from the dictionary. A JBIG2 stream (ITU-T T.88) declares its page's and each
region's width and height in its segments, and the decoder (jbig2dec, in Ghostscript) allocates
them: a stream of a few hundred bytes can declare a 60,000 x 60,000 page on a 100 x 100 image.
A CCITT G3/G4 stream's row length is the ``/DecodeParms`` ``/Columns``, whatever ``/Width`` says.
So each such image is judged by the largest bitmap it declares (page, region, rows x columns),
against the same pixel limit; one whose sizes cannot be read without decoding it (data of unknown
length, a codec behind a filter other than Flate, a truncated header) is refused, not guessed.

pdfminer.six has a JBIG2 segment reader, but it reads referred-to segment numbers above 256 as
four bytes instead of two (T.88 7.2.5) and stops with an assertion or an unsupported-feature
exception on hostile input; the header walk below is the standard's, and reads nothing but
headers and the fixed-size size fields. JBIG2 data (or its globals) behind a Flate layer, as
qpdf writes globals, is inflated up to a bound first; behind any other filter it is refused.

JBIG2's symbol coding declares counts before any bitmap: a symbol dictionary its number of new
and exported symbols (SDNUMNEWSYMS, SDNUMEXSYMS), a text region the symbols it places
(SBNUMINSTANCES), each four bytes, and jbig2dec allocates or loops by them before decoding one
symbol (the symbols' own sizes are arithmetic- or Huffman-coded: not readable without decoding).
They are summed over the image and its globals, each symbol counted as :data:`SYMBOL_PIXELS`
pixels, and held to the same pixel limit as the page. A pattern dictionary declares its patterns'
size and number (HDPW, HDPH, GRAYMAX): it is judged by the one bitmap they are decoded into.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

import pikepdf

JBIG2: Final = pikepdf.Name("/JBIG2Decode")
CCITT: Final = pikepdf.Name("/CCITTFaxDecode")
_SYMBOL_DICTIONARY: Final = 0
_PATTERN_DICTIONARY: Final = 16
_PAGE_INFORMATION: Final = 48
_END_OF_STRIPE: Final = 50
# Segment types whose data starts with a region segment information field (T.88 7.4.1): text,
# halftone, generic and refinement regions, intermediate and immediate.
_REGIONS: Final = frozenset({4, 6, 7, 20, 22, 23, 36, 38, 39, 40, 42, 43})
_TEXT_REGIONS: Final = frozenset({4, 6, 7})
_HEADER_BYTES: Final = 32  # the longest fixed part read: a text region's, 29 bytes
# A symbol costs its decoder at least 64 bytes however small its bitmap (the image header and
# its entries in the dictionary's new and exported lists): 512 pixels at one bit each. So
# counted, an image's symbols take no more than the largest page we accept.
SYMBOL_PIXELS: Final = 512
_UNKNOWN: Final = 0xFFFFFFFF
_FLATE: Final = pikepdf.Name("/FlateDecode")
_MAX_INFLATED: Final = 64 * 1024 * 1024  # a JBIG2 page's coded data is far below (1 bit/pixel)
_CCITT_COLUMNS: Final = 1728  # the PDF default (ISO 32000-1 table 11)


class UnmeasurableError(ValueError):
    """The image's decoded size cannot be read without decoding it."""


@dataclass(frozen=True, slots=True)
class Declared:
    """What an image's data declares it decodes to."""

    pixels: int  # its largest bitmap
    symbols: int = 0  # JBIG2: symbols its dictionaries declare and its text regions place


def declared(stream: pikepdf.Stream) -> Declared:
    """The largest bitmap ``stream`` (an image XObject) declares it decodes to, in pixels: its
    dictionary's ``/Width`` x ``/Height``, and for JBIG2 and CCITT images also what their data
    or decode parameters declare; and for JBIG2 the symbols it declares, in all. Raises
    :class:`UnmeasurableError`."""
    width, height = _int(stream.get("/Width", 0)), _int(stream.get("/Height", 0))
    largest = width * height
    filters = _filters(stream)
    if JBIG2 not in filters and CCITT not in filters:
        return Declared(largest)
    params = stream.get("/DecodeParms")
    if isinstance(params, pikepdf.Array):  # one entry per filter: the codec's is the last
        params = params[len(params) - 1] if len(params) else None
    params = params if isinstance(params, pikepdf.Dictionary) else pikepdf.Dictionary()
    if filters[-1] == CCITT:
        columns = _int(params.get("/Columns", _CCITT_COLUMNS))
        rows = _int(params.get("/Rows", 0))
        return Declared(max(largest, columns * max(rows, height)))
    sizes, symbols = jbig2_declared(_codec_input(stream, filters), height=height)
    globals_ = params.get("/JBIG2Globals")
    if isinstance(globals_, pikepdf.Stream):  # qpdf and others Flate-compress it when saving
        data = _codec_input(globals_, [*_filters(globals_), JBIG2])
        more, more_symbols = jbig2_declared(data, height=height)
        sizes, symbols = sizes + more, symbols + more_symbols
    return Declared(max([largest, *(w * h for w, h in sizes)]), symbols)


def jbig2_declared(data: bytes, *, height: int) -> tuple[list[tuple[int, int]], int]:
    """Every (width, height) a PDF-embedded JBIG2 stream (no file header, T.88 annex D.3)
    declares: its page, its regions and its pattern dictionaries' bitmaps; and the number of
    symbols its symbol dictionaries and text regions declare, in all. A page of unknown height
    (striped) grows to its last end-of-stripe row; ``height`` (the image dictionary's) stands
    in below that."""
    sizes: list[tuple[int, int]] = []
    symbols = stripe_end = offset = 0
    while offset < len(data):
        kind, offset, length = _segment_header(data, offset)
        body = data[offset : offset + min(length, _HEADER_BYTES)]
        if kind == _PAGE_INFORMATION or kind in _REGIONS:
            w, h = _fields(body, ">II")
            sizes.append((w, height if (kind == _PAGE_INFORMATION and h == _UNKNOWN) else h))
            symbols += _placed(body) if kind in _TEXT_REGIONS else 0
        elif kind == _SYMBOL_DICTIONARY:
            symbols += _dictionary_symbols(body)
        elif kind == _PATTERN_DICTIONARY:
            _, pattern_w, pattern_h, gray_max = _fields(body, ">BBBI")
            sizes.append(((gray_max + 1) * pattern_w, pattern_h))  # one collective bitmap
        elif kind == _END_OF_STRIPE:
            (row,) = _fields(body, ">I")
            stripe_end = max(stripe_end, row + 1)
        offset += length
    if stripe_end:
        sizes.append((max((w for w, _ in sizes), default=0), stripe_end))
    return sizes, symbols


def _dictionary_symbols(body: bytes) -> int:
    """SDNUMEXSYMS + SDNUMNEWSYMS, after the flags and the AT fields they imply (7.4.2.1)."""
    (flags,) = _fields(body, ">H")
    huffman, aggregate = flags & 1, flags >> 1 & 1
    template, refinement_template = flags >> 10 & 3, flags >> 12 & 1
    at = 0 if huffman else 8 if template == 0 else 2
    at += 4 if aggregate and refinement_template == 0 else 0
    exported, new = _fields(body[2 + at :], ">II")
    return int(exported + new)


def _placed(body: bytes) -> int:
    """A text region's SBNUMINSTANCES, after its region information (17 bytes), flags and the
    fields they imply (7.4.3.1)."""
    (flags,) = _fields(body[17:], ">H")
    huffman, refine, refinement_template = flags & 1, flags >> 1 & 1, flags >> 15 & 1
    offset = 19 + (2 if huffman else 0) + (4 if refine and refinement_template == 0 else 0)
    (instances,) = _fields(body[offset:], ">I")
    return int(instances)


def _segment_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(segment type, offset of its data, data length) of the header at ``offset`` (T.88 7.2)."""
    number, flags, refs = _fields(data[offset : offset + 6], ">IBB")
    offset += 5
    count = refs >> 5  # referred-to segments: 3 bits, or 7 and a 29-bit count
    if count == 7:
        (long_form,) = _fields(data[offset : offset + 4], ">I")
        count = long_form & 0x1FFFFFFF
        offset += 4 + (count + 8) // 8  # and a retention bit for each, and for itself
    elif count > 4:
        raise UnmeasurableError("a JBIG2 segment header is malformed")
    else:
        offset += 1
    offset += count * (1 if number <= 256 else 2 if number <= 65536 else 4)
    offset += 4 if flags & 0x40 else 1  # the page association, long or short
    (length,) = _fields(data[offset : offset + 4], ">I")
    if length == _UNKNOWN:  # only an immediate generic region may: its end is found by decoding
        raise UnmeasurableError("a JBIG2 segment of unknown length")
    return flags & 0x3F, offset + 4, length


def _codec_input(stream: pikepdf.Stream, filters: list[pikepdf.Name]) -> bytes:
    """The bytes the codec (the last filter) reads: the raw data, or behind a plain Flate layer
    that data inflated to at most ``_MAX_INFLATED`` (a Flate bomb is refused, not inflated)."""
    raw = bytes(stream.read_raw_bytes())
    if len(filters) == 1:
        return raw
    params = stream.get("/DecodeParms")
    flate_params = params[0] if isinstance(params, pikepdf.Array) and len(params) else params
    if filters[:-1] != [_FLATE] or isinstance(flate_params, pikepdf.Dictionary):  # predictors
        raise UnmeasurableError("a JBIG2 image behind a filter other than plain Flate")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, _MAX_INFLATED)
    except zlib.error as e:
        raise UnmeasurableError("a JBIG2 image's Flate layer is damaged") from e
    if inflater.unconsumed_tail:
        raise UnmeasurableError(f"a JBIG2 image's Flate layer inflates past {_MAX_INFLATED} bytes")
    return data


def _fields(chunk: bytes, layout: str) -> tuple[int, ...]:
    try:
        return struct.unpack_from(layout, chunk)
    except struct.error as e:
        raise UnmeasurableError("a JBIG2 segment is truncated") from e


def _filters(stream: pikepdf.Stream) -> list[pikepdf.Name]:
    value = stream.get("/Filter")
    if value is None:
        return []
    items = list(value) if isinstance(value, pikepdf.Array) else [value]
    return [pikepdf.Name(str(f)) for f in items]


def _int(value: object) -> int:
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as e:
        raise UnmeasurableError("an image size is not a number") from e
    if number < 0:
        raise UnmeasurableError("an image size is negative")
    return number
