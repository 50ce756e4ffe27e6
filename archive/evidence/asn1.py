"""RFC 4998 Evidence Record Syntax, ASN.1 module ERS (IMPLICIT TAGS), in asn1crypto.

No Python library carries these types in a usable form (pyasn1-alt-modules' ``rfc4998`` assigns
``id_aa_er_internal`` twice and has no ``id_aa_er_external``), so the few structures of RFC 4998
§4 are declared here with the types the archive already uses for CMS (asn1crypto). The DER of
every record in the DSS/BSI test vectors decodes and re-encodes byte for byte with them
(tests/unit/archive/evidence/test_asn1.py), which is how the tagging below is pinned.
"""

from __future__ import annotations

from typing import ClassVar

from asn1crypto import algos, cms, core, tsp

__all__ = [
    "ID_AA_ER_EXTERNAL",
    "ID_AA_ER_INTERNAL",
    "ArchiveTimeStamp",
    "ArchiveTimeStampChain",
    "ArchiveTimeStampSequence",
    "CryptoInfos",
    "EncryptionInfo",
    "EvidenceRecord",
    "PartialHashtree",
    "ReducedHashtree",
]

# RFC 4998 §3 / Appendix A: the CMS attributes that carry an ER inside or beside a signed object
# (the second is the one pyasn1-alt-modules lost).
# Importing tsp registers TSTInfo as the content of id-smime-ct-TSTInfo in cms.
_ = tsp.TSTInfo
ID_AA_ER_INTERNAL = "1.2.840.113549.1.9.16.2.49"
ID_AA_ER_EXTERNAL = "1.2.840.113549.1.9.16.2.50"


class Attribute(core.Sequence):
    """X.501 Attribute, values kept as opaque DER: an ER carries them through, never reads them."""

    _fields: ClassVar = [
        ("attr_type", core.ObjectIdentifier),
        ("attr_values", core.SetOf, {"spec": core.Any}),
    ]


class Attributes(core.SetOf):
    _child_spec = Attribute


class CryptoInfos(core.SequenceOf):
    _child_spec = Attribute


class EncryptionInfo(core.Sequence):
    _fields: ClassVar = [
        ("encryption_info_type", core.ObjectIdentifier),
        ("encryption_info_value", core.Any),
    ]


class PartialHashtree(core.SequenceOf):
    _child_spec = core.OctetString


class ReducedHashtree(core.SequenceOf):
    _child_spec = PartialHashtree


class ArchiveTimeStamp(core.Sequence):
    _fields: ClassVar = [
        ("digest_algorithm", algos.DigestAlgorithm, {"implicit": 0, "optional": True}),
        ("attributes", Attributes, {"implicit": 1, "optional": True}),
        ("reduced_hashtree", ReducedHashtree, {"implicit": 2, "optional": True}),
        ("time_stamp", cms.ContentInfo),
    ]


class ArchiveTimeStampChain(core.SequenceOf):
    _child_spec = ArchiveTimeStamp


class ArchiveTimeStampSequence(core.SequenceOf):
    _child_spec = ArchiveTimeStampChain


class DigestAlgorithms(core.SequenceOf):
    """SEQUENCE OF (CMS has a SET OF under the same name)."""

    _child_spec = algos.DigestAlgorithm


class EvidenceRecord(core.Sequence):
    _fields: ClassVar = [
        ("version", core.Integer),  # v1(1), the only one
        ("digest_algorithms", DigestAlgorithms),
        ("crypto_infos", CryptoInfos, {"implicit": 0, "optional": True}),
        ("encryption_info", EncryptionInfo, {"implicit": 1, "optional": True}),
        ("archive_time_stamp_sequence", ArchiveTimeStampSequence),
    ]
