"""The CMS attributes every signer of this stage uses, built cheaply: a key in memory and a key on
a token sign the same structure, so both mix in :class:`CheapCmsAttributes`.

asn1crypto copies parsed structures deeply when it nests them (SignerInfo retags the attributes),
several ms per signature; objects re-read from their DER copy cheaply. The CAdES signed
attributes of a PAdES signature (signing-certificate-v2 only: PAdES forbids signing-time) are
built once per key instead of once per signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from asn1crypto import cms, x509
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.signers.pdf_cms import Signer

__all__ = ["CheapCmsAttributes", "FixedCadesAttributes"]


class CheapCmsAttributes(Signer):
    """Mixed in before a pyHanko ``Signer``: attribute sets re-read from their DER."""

    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        attrs = await super().signed_attrs(*args, **kwargs)
        return cms.CMSAttributes.load(attrs.dump())

    async def unsigned_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes | None:
        attrs = await super().unsigned_attrs(*args, **kwargs)
        return None if attrs is None else cms.CMSAttributes.load(attrs.dump())


class FixedCadesAttributes(SignedAttributeProviderSpec):
    """signing-certificate-v2 of one certificate, encoded once."""

    def __init__(self, certificate: x509.Certificate) -> None:
        value = as_signing_certificate_v2(certificate)
        attr = simple_cms_attribute("signing_certificate_v2", value)  # type: ignore[no-untyped-call]
        self._der: bytes = attr.dump()

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterator[CMSAttributeProvider]:
        yield _FixedAttribute(self._der)


class _FixedAttribute(CMSAttributeProvider):
    def __init__(self, der: bytes) -> None:
        self._der = der

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self._der)
