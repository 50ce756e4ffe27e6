"""Faster readers for plain PDF names, arrays and dictionaries, installed into pyHanko's parser.

pyHanko 0.38 reads all three a byte at a time: a name through ``read_until_delimiter`` (a
generator over 1-byte reads) and ``_decode_name`` (a byte loop for ``#`` escapes); an array or
a dictionary token by token, peeking 20 bytes for an indirect reference before every number,
reading numbers in 16-byte chunks and a reference's numbers byte by byte. The incremental-update
analysis of a signature reads every object of the signed revision (to know every way an object
overwritten later could be reached): that parse was most of the analysis' CPU (profiled, issue
#15 item 2).

Each reader gives the same object, the same stream position, the same errors and warnings as
pyHanko's: input in the plain form below is built in one step, and anything else goes to
pyHanko's own code, which then reads, raises or decides exactly as before:

* a name: ``/`` then printable ASCII other than delimiters and ``#``, ended by PDF whitespace
  or a delimiter (no escapes, nothing pyHanko would refuse or decode);
* an array: ``[``, decimal integers without sign or point, PDF whitespace, and arrays of the
  same one level deep, then ``]`` (no reference, name, real, comment or stray byte); or ``[``,
  indirect references ``N G R`` (N from 1, at most 10 digits, G at most 5, single spaces) and
  PDF whitespace, then ``]``, outside content streams;
* a dictionary: pyHanko's loop entry by entry, where an entry of a plain name key, PDF
  whitespace and a plain name, a plain reference (as above, ended by whitespace or a
  delimiter) or an integer followed by the next key or the end is read in one step; any other
  value by pyHanko's ``read_object``, any other entry (a comment, an odd key, the end of the
  stream) by pyHanko's statements from the same position; the stream payload by pyHanko's
  function. Content-stream dictionaries always go to pyHanko.

A stream that is not a ``BytesIO`` always goes to pyHanko. ``tests/unit/archive/
test_pdf_tokens.py`` compares the readers with pyHanko's on edge cases, random input (strict
and lenient) and, with ``tests/integration/archive/test_diff_policy.py``, every object of real
signed documents. pyHanko is pinned at 0.38.0: recheck on any upgrade.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, Final

from pyhanko.pdf_utils import generic

__all__ = ["install", "read_array", "read_dictionary", "read_name", "uninstall"]

_ORIGINAL_NAME: Final[Callable[[Any], Any]] = generic.NameObject.read_from_stream
_ORIGINAL_ARRAY: Final[Callable[..., Any]] = generic.ArrayObject.read_from_stream
_ORIGINAL_DICT: Final[Callable[..., Any]] = generic.DictionaryObject.read_from_stream
_pdf: Any = generic  # pyHanko's parser module, untyped: called as the originals call it

# pyhanko.pdf_utils.misc.PDF_WHITESPACE and PDF_DELIMITERS, no more.
_WS = rb"[ \n\r\t\x0c\x00]"
_END = rb"[ \n\r\t\x0c\x00()<>\[\]{}/%]"
_NAME: Final = re.compile(rb"/[!-~]*?(?=%s)" % _END)
_NAME_BODY: Final = re.compile(rb"[^()<>\[\]{}/%#]*")
_INT = rb"[0-9]+(?=[ \n\r\t\x0c\x00\[\]])"
_ARRAY: Final = re.compile(rb"\[(?:%s|%s|\[(?:%s|%s)*\])*\]" % (_WS, _INT, _WS, _INT))
_TOKEN: Final = re.compile(rb"[0-9]+|\[|\]")
# An indirect reference pyHanko's read_object takes for one (INDIRECT_PATTERN within its 20-byte
# peek, an object number above 0) and reads through single spaces (bytes.isspace) up to the R.
_REF = rb"([1-9][0-9]{0,9}) ([0-9]{1,5}) R(?=%s)" % _END
_REFS: Final = re.compile(rb"\[(?:%s|[1-9][0-9]{0,9} [0-9]{1,5} R(?=[ \n\r\t\x0c\x00\]]))*\]" % _WS)
_REF_TOKEN: Final = re.compile(rb"([0-9]+) ([0-9]+) R")
# A dictionary entry: a plain key, PDF whitespace, and the value's first byte (no comment); the
# value is a plain name, a reference, an integer followed by the next key or the end, or else
# (group 5 empty) something pyHanko's read_object reads from there.
_BODY = rb"[^\x00-\x20\x7f-\xff()<>\[\]{}/%#]*"
_ENTRY: Final = re.compile(
    rb"%s*/(%s)(?=%s)%s*(?=[^ \n\r\t\x0c\x00%%])(?:/(%s)(?=%s)|%s|([0-9]+)(?=%s*[/>])|)"
    % (_WS, _BODY, _END, _WS, _BODY, _END, _REF, _WS)
)
_CLOSE: Final = re.compile(rb"%s*>>" % _WS)


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
            # a content stream has no references: pyHanko reads numbers and an operator there
            found = None if mode else _REFS.match(view, start)
            if found is None:
                return _ORIGINAL_ARRAY(stream, container_ref, in_content_stream=mode)
            return _references(stream, bytes(view[start : found.end()]), container_ref)
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


def _references(stream: io.BytesIO, text: bytes, container_ref: Any) -> Any:
    """An array of indirect references only, as pyHanko's reader builds it."""
    handler = container_ref.get_pdf_handler()
    outer = generic.ArrayObject()
    for idnum, generation in _REF_TOKEN.findall(text):
        reference = _pdf.IndirectObject(int(idnum), int(generation), handler)
        reference.container_ref = container_ref
        outer.append(reference)
    stream.seek(stream.tell() + len(text))
    return outer


def read_dictionary(
    stream: Any,
    container_ref: Any,
    as_metadata_stream: bool = False,
    in_content_stream: Any = generic.ContentOpReading.NO,
) -> Any:
    """pyHanko's ``DictionaryObject.read_from_stream`` (the stream stands on the ``<<``).

    pyHanko's own loop, entry by entry; a plain entry (see :data:`_ENTRY`) is read in one step,
    any other entry, and the end when it is not plain whitespace and ``>>``, by pyHanko's
    statements for that entry, from the same position. The stream payload after the
    dictionary is read by pyHanko's function.
    """
    if type(stream) is not io.BytesIO or in_content_stream:
        return _ORIGINAL_DICT(stream, container_ref, as_metadata_stream, in_content_stream)
    start = stream.tell()
    if stream.read(2) != b"<<":
        stream.seek(start)
        return _ORIGINAL_DICT(stream, container_ref, as_metadata_stream, in_content_stream)
    data: dict[Any, Any] = {}
    handler = container_ref.get_pdf_handler()
    with stream.getbuffer() as view:
        while True:
            pos = stream.tell()
            if (closed := _CLOSE.match(view, pos)) is not None:
                stream.seek(closed.end())
                break
            if (entry := _ENTRY.match(view, pos)) is None:  # pyHanko's statements, one entry
                if _pdf.read_non_whitespace(stream) == b">":
                    stream.read(1)
                    break
                stream.seek(-1, io.SEEK_CUR)
                try:
                    key = _pdf.NameObject.read_from_stream(stream)
                except Exception as ex:
                    raise _pdf.PdfReadError(
                        f"Failed to read dictionary key at byte 0x{hex(stream.tell())}; "
                        "expected PDF name"
                    ) from ex
                _pdf.read_non_whitespace(stream)
                stream.seek(-1, io.SEEK_CUR)
                value = _read_object(stream, container_ref, in_content_stream)
            else:
                key = generic.NameObject("/" + bytes(entry[1]).decode("ascii"))
                name, idnum, generation, number = entry.group(2, 3, 4, 5)
                stream.seek(entry.end())
                if name is not None:
                    value = generic.NameObject("/" + bytes(name).decode("ascii"))
                elif idnum is not None:
                    value = _pdf.IndirectObject(int(idnum), int(generation), handler)
                elif number is not None:
                    value = generic.NumberObject(int(number))  # type: ignore[no-untyped-call]
                else:  # any other value: pyHanko's read_object from its first byte
                    value = _read_object(stream, container_ref, in_content_stream)
                value.container_ref = container_ref
            if key not in data:
                data[key] = value
                continue
            err = f"Multiple definitions in dictionary at byte {hex(stream.tell())} for key {key}"
            if handler.strict:
                raise _pdf.PdfStrictReadError(err)
            _pdf.logger.warning(err)
    return _finish(stream, data, handler, as_metadata_stream)


def _read_object(stream: io.BytesIO, container_ref: Any, mode: Any) -> Any:
    return _pdf.read_object(stream, container_ref, in_content_stream=mode)


def _finish(stream: io.BytesIO, data: dict[Any, Any], handler: Any, metadata: bool) -> Any:
    """The end of pyHanko's reader: a stream's payload, or a dictionary."""
    stream_data = _pdf._maybe_read_stream_payload(stream, data, handler)
    if stream_data is None:
        return _pdf.DictionaryObject(data)
    stm_cls: Any = generic.StreamObject
    if metadata:
        from pyhanko.pdf_utils.metadata.xmp_xml import MetadataStream

        stm_cls = MetadataStream
    return stm_cls(data, encoded_data=stream_data)


def install() -> None:
    """Make pyHanko's object parser use this module's readers (idempotent)."""
    generic.NameObject.read_from_stream = staticmethod(read_name)  # type: ignore[method-assign]
    generic.ArrayObject.read_from_stream = staticmethod(read_array)  # type: ignore[method-assign]
    generic.DictionaryObject.read_from_stream = staticmethod(read_dictionary)  # type: ignore[method-assign]


def uninstall() -> None:
    """pyHanko's own readers again (for comparisons and benchmarks)."""
    generic.NameObject.read_from_stream = _ORIGINAL_NAME  # type: ignore[method-assign]
    generic.ArrayObject.read_from_stream = _ORIGINAL_ARRAY  # type: ignore[method-assign]
    generic.DictionaryObject.read_from_stream = _ORIGINAL_DICT  # type: ignore[method-assign]
