"""Hardened XML reading for QĐ 130 files: refuse what could harm us before it is acted upon.

Hospital files are untrusted input. Both parsers here are expat (the standard library's, with its
own amplification limits), set up as defusedxml sets it up: a DOCTYPE, an entity declaration or
an external reference is refused when the parser meets it, so nothing is expanded and nothing is
fetched (expat never opens a URL itself; the external-entity handler refuses instead of
resolving). On top: only UTF-8 is accepted (a declared other encoding or a UTF-16/32 byte order
mark is refused, invalid UTF-8 is an expat error), nesting is limited, and sizes are checked
before bytes are held.

:func:`parse_inner` parses one decoded inner table (bounded by its size limit) with
``defusedxml.ElementTree``; the streaming envelope reader (:mod:`~archive.sources.qd130.envelope`)
installs :func:`harden` on its push parser. Problems raise :class:`XmlRefusedError` (reason and a
PHI-free detail).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from archive.sources.quarantine import QuarantineReason

R = QuarantineReason

_BOMS: Final = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00\x00\x00<", b"<\x00")
_DECLARED: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_B64_SPACE: Final = re.compile(rb"[ \t\r\n]+")


class XmlRefusedError(Exception):
    """Why a piece of XML was refused; ``detail`` never quotes the content."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def check_encoding(data: bytes, what: str) -> None:
    """Refuse anything but UTF-8 (or its ASCII subset) before parsing."""
    if data.startswith(_BOMS):
        raise XmlRefusedError(R.MALFORMED_XML, f"{what} is UTF-16/32, not UTF-8")
    declared = _DECLARED.match(data[:512])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise XmlRefusedError(R.MALFORMED_XML, f"{what} declares an encoding other than UTF-8")


def check_declared_encoding(encoding: str | None, what: str) -> None:
    if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
        raise XmlRefusedError(R.MALFORMED_XML, f"{what} declares an encoding other than UTF-8")


def harden(parser: Any, what: str) -> None:
    """Make an expat push parser refuse DTDs, entity declarations and external references."""

    def refuse(kind: str) -> Any:
        def handler(*_: object) -> None:
            raise XmlRefusedError(R.HOSTILE_XML, f"{what} holds {kind}; refused unread")

        return handler

    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse("a DOCTYPE declaration")
    parser.EntityDeclHandler = refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = refuse("an unparsed entity declaration")
    parser.ExternalEntityRefHandler = refuse("an external entity reference")
    parser.XmlDeclHandler = lambda _v, enc, _s: check_declared_encoding(enc, what)


def decode_base64(text: bytes, what: str, *, limit: int) -> bytes:
    """Strict Base64 (whitespace between lines allowed), refused beyond ``limit`` decoded
    bytes before decoding."""
    compact = _B64_SPACE.sub(b"", text)
    if len(compact) // 4 * 3 > limit:
        raise XmlRefusedError(R.OVERSIZED_XML, f"{what} decodes to more than {limit} bytes")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise XmlRefusedError(R.INVALID_BASE64, f"{what} is not valid Base64") from None


def parse_inner(data: bytes, what: str, *, max_depth: int, max_text: int) -> Element:
    """One decoded inner table as an element tree; refused when hostile, malformed, too deep
    or holding a text node longer than ``max_text`` characters."""
    check_encoding(data, what)
    try:
        root: Element = fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as e:
        raise XmlRefusedError(R.HOSTILE_XML, f"{what} holds {type(e).__name__}; refused") from None
    except ParseError as e:
        line, column = e.position
        raise XmlRefusedError(
            R.MALFORMED_XML, f"{what} is not well-formed XML (line {line}, column {column})"
        ) from None
    _check_shape(root, what, max_depth=max_depth, max_text=max_text)
    return root


def _check_shape(root: Element, what: str, *, max_depth: int, max_text: int) -> None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise XmlRefusedError(R.HOSTILE_XML, f"{what} nests deeper than {max_depth} levels")
        if node.text is not None and len(node.text) > max_text:
            raise XmlRefusedError(
                R.OVERSIZED_XML, f"{what} has a text node longer than {max_text} characters"
            )
        stack.extend((child, depth + 1) for child in node)
