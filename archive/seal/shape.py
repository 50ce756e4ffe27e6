"""What can be checked of a sealed object without any key: that it is whole.

Repair copies sealed metadata between sites and takes no key (it must not be able to decrypt), so
it cannot authenticate a frame. What it can check is the envelope's structure: a strict header
(:func:`archive.seal.header.parse_header`), then frames of the header's size, the last one and
only the last one final, and nothing after it. A truncated, extended or spliced object, or bytes
that were never an envelope, fail here; an object altered inside a frame passes this and is left
to the S3 checksum recorded at upload (checked by the caller) and, at the next verification, to
the GCM tags.
"""

from __future__ import annotations

import io
import struct

from archive.core.errors import EnvelopeFormatError
from archive.seal.header import parse_header, read_raw_header

_PREFIX = struct.Struct(">BI")  # kind, sealed_length (as in archive.seal.frames)
_TAG_BYTES, _TOTAL_BYTES = 16, 8
_MORE, _FINAL = 0, 1


def check_shape(sealed: bytes) -> None:
    """Raise :class:`EnvelopeFormatError` unless ``sealed`` is a whole envelope (no key used)."""
    src = io.BytesIO(sealed)
    header = parse_header(read_raw_header(src))
    full = header.frame_size + _TAG_BYTES
    pos, seq = header.length, 0
    while True:
        if pos + _PREFIX.size > len(sealed):
            raise EnvelopeFormatError(f"the sealed object ends inside or before frame {seq}")
        kind, length = _PREFIX.unpack_from(sealed, pos)
        if not (kind == _MORE and length == full) and not (
            kind == _FINAL and _TAG_BYTES <= length <= full
        ):
            raise EnvelopeFormatError(f"frame {seq} has an impossible kind or length")
        pos += _PREFIX.size + length + (_TOTAL_BYTES if kind == _FINAL else 0)
        if pos > len(sealed):
            raise EnvelopeFormatError(f"the sealed object is truncated inside frame {seq}")
        if kind == _FINAL:
            break
        seq += 1
    if pos != len(sealed):
        raise EnvelopeFormatError("there are bytes after the final frame")
