"""Hardened XML reading for QĐ 130 files: refuse what could harm us before it is acted upon.

Hospital files are untrusted input. The streaming envelope parser is expat (the standard
library's, with its own amplification limits), set up as defusedxml sets it up: a DOCTYPE, an
entity declaration or an external reference is refused when the parser meets it, so nothing is
expanded and nothing is fetched (expat never opens a URL itself; the external-entity handler
refuses instead of resolving). The inner tables, small and many, are parsed by lxml (libxml2,
several times faster than ElementTree) after a byte search has refused any DOCTYPE or entity
declaration, with entity resolution, DTD loading and the network off. On top: only UTF-8 is
accepted (a declared other encoding or a UTF-16/32 byte order mark is refused, invalid UTF-8 is
a parser error), nesting is limited, and sizes are checked before bytes are held.

:func:`parse_inner` parses one decoded inner table (bounded by its size limit); the streaming
envelope reader (:mod:`~archive.sources.qd130.envelope`) installs :func:`harden` on its push
parser. Problems raise :class:`XmlRefusedError` (reason and a PHI-free detail).
"""

from __future__ import annotations

import binascii
import functools
import re
from typing import Any, Final
from xml.parsers import expat

from lxml import etree

from archive.sources.quarantine import QuarantineReason

R = QuarantineReason

_BOMS: Final = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00\x00\x00<", b"<\x00")
_DECLARED: Final = re.compile(rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_DECLARATIONS: Final = re.compile(rb"<!(?:DOCTYPE|ENTITY)")
_RESOURCE_LIMIT: Final = 114  # libxml2 XML_ERR_RESOURCE_LIMIT: excessive depth, huge node
# Comments and processing instructions dropped (as ElementTree does): a table is its elements.
_OPTIONS: Final = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
)
_PARSER: Final = etree.XMLParser(**_OPTIONS)
_HUGE_PARSER: Final = etree.XMLParser(**_OPTIONS, huge_tree=True)


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
    compact = text.translate(None, b" \t\r\n")
    if len(compact) // 4 * 3 > limit:
        raise XmlRefusedError(R.OVERSIZED_XML, f"{what} decodes to more than {limit} bytes")
    try:  # strict: only the alphabet, padding only at the end (as b64decode's validate=True)
        return binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        raise XmlRefusedError(R.INVALID_BASE64, f"{what} is not valid Base64") from None


def parse_inner(
    data: bytes, what: str, *, max_depth: int, max_text: int, huge: bool = False
) -> Any:
    """One decoded inner table (or a HOSO: ``huge``) as an lxml element tree; refused when
    hostile, malformed, too deep or holding a text node longer than ``max_text`` characters.

    A DOCTYPE or entity declaration is refused by a byte search before libxml2 sees the data, so
    nothing is declared, expanded or fetched (the parser also resolves no entity and uses no
    network). ``huge`` lifts libxml2's 10 MB text-node limit for a HOSO, whose Base64 contents
    can be larger; its size is already bounded by the caller."""
    check_encoding(data, what)
    if _DECLARATIONS.search(data):
        raise XmlRefusedError(R.HOSTILE_XML, f"{what} holds a DTD or entity declaration; refused")
    try:
        root = etree.fromstring(data, _HUGE_PARSER if huge else _PARSER)
    except etree.XMLSyntaxError as e:
        if e.code == _RESOURCE_LIMIT:
            raise XmlRefusedError(
                R.HOSTILE_XML, f"{what} exceeds the parser's depth or size limits"
            ) from None
        line, column = e.position
        raise XmlRefusedError(
            R.MALFORMED_XML, f"{what} is not well-formed XML (line {line}, column {column})"
        ) from None
    either, too_deep, too_long = _shape_checks(max_depth, max_text)
    if len(data) <= max_text:
        # No text node holds more characters than the document has bytes (a character takes
        # one byte at least, a reference more): only the depth needs looking at.
        if too_deep(root):
            raise XmlRefusedError(R.HOSTILE_XML, f"{what} nests deeper than {max_depth} levels")
        return root
    if not either(root):  # the common case: one XPath run instead of two
        return root
    if too_deep(root):
        raise XmlRefusedError(R.HOSTILE_XML, f"{what} nests deeper than {max_depth} levels")
    if too_long(root):
        raise XmlRefusedError(
            R.OVERSIZED_XML, f"{what} has a text node longer than {max_text} characters"
        )
    return root


@functools.lru_cache(maxsize=8)
def _shape_checks(max_depth: int, max_text: int) -> tuple[Any, Any, Any]:
    """Compiled XPath tests (run in C, not a Python walk over every node): too deep or too
    long, too deep, too long."""
    deep = "/*" * (max_depth + 1)
    long = f"//text()[string-length() > {int(max_text)}]"
    return (
        etree.XPath(f"boolean({deep} | {long})"),
        etree.XPath(f"boolean({deep})"),
        etree.XPath(f"boolean({long})"),
    )
