"""XMP metadata as the PDF/A checks need it: properties by prefixed name, dates compared.

Parsed with defusedxml (a dependency of fpdf2): the XMP of a stored file is untrusted input.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from xml.etree.ElementTree import Element

from defusedxml import ElementTree  # type: ignore[import-untyped]

NAMESPACES = {
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://www.aiim.org/pdfa/ns/id/": "pdfaid",
}
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# PDF/A: an Info entry must equal its XMP property (ISO 19005-3, 6.6.3; ISO 19005-1, 6.7.3).
INFO_TO_XMP = {
    "/Title": "dc:title",
    "/Author": "dc:creator",
    "/Subject": "dc:description",
    "/Keywords": "pdf:Keywords",
    "/Creator": "xmp:CreatorTool",
    "/Producer": "pdf:Producer",
    "/CreationDate": "xmp:CreateDate",
    "/ModDate": "xmp:ModifyDate",
}


def parse_xmp(data: bytes) -> dict[str, str]:
    """Simple and first-item values of every rdf:Description, keyed ``prefix:Name``."""
    try:
        root = ElementTree.fromstring(data)
    except Exception as e:  # noqa: BLE001 - expat and defusedxml raise several types
        raise ValueError(str(e)) from None
    props: dict[str, str] = {}
    for description in root.iter(RDF + "Description"):
        for name, value in description.attrib.items():
            props[_prefixed(name)] = value.strip()
        for child in description:
            props[_prefixed(child.tag)] = _value(child)
    return props


def same_value(info_key: str, info_value: str, xmp_value: str) -> bool:
    if info_key in ("/CreationDate", "/ModDate"):
        try:
            return pdf_date(info_value) == xmp_date(xmp_value)
        except ValueError:
            return False
    return info_value == xmp_value


def pdf_date(text: str) -> datetime:
    """A PDF date (``D:YYYYMMDDHHmmSS+HH'mm'``, trailing parts optional) as a datetime."""
    m = re.fullmatch(
        r"(?:D:)?(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:([Z+-])(?:(\d\d)'?(\d\d)?'?)?)?",
        text.strip(),
    )
    if m is None:
        raise ValueError(f"not a PDF date: {text!r}")
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
    zone = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0), tzinfo=zone
    )


def xmp_date(text: str) -> datetime:
    """An XMP (ISO 8601) date; without a zone it is taken as UTC, like a PDF date without one."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _prefixed(tag: str) -> str:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return f"{NAMESPACES.get(uri, uri)}:{local}"
    return tag


def _value(element: Element) -> str:
    for container in element:
        if container.tag in (RDF + "Alt", RDF + "Seq", RDF + "Bag"):
            items = list(container)
            default = [i for i in items if i.get(XML_LANG) == "x-default"]
            chosen = (default or items or [container])[0]
            return (chosen.text or "").strip()
    return (element.text or "").strip()
