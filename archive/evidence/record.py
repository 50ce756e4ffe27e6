"""An evidence record read into plain values, and records built from them.

:func:`read_record` parses DER strictly (nothing after the record, version 1, every chain and
every timestamp present and a real RFC 3161 token) into :class:`Record`, or raises
:class:`EvidenceFormatError`; the validator only ever sees a record that parsed. The builders
write the three shapes RFC 4998 §5 has: the initial record, a timestamp renewal (a new ATS at
the end of the last chain) and a hash-tree renewal (a new chain).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, parser, tsp

from archive.core.errors import EvidenceFormatError
from archive.evidence import asn1
from archive.evidence.algorithms import digest, hasher_for
from archive.evidence.hashtree import ReducedTree

__all__ = [
    "Record",
    "Stamp",
    "hash_tree_renewal_leaf",
    "new_record",
    "new_record_ders",
    "read_record",
    "renew_hash_tree",
    "renew_timestamp",
    "timestamp_renewal_leaf",
]


@dataclass(frozen=True)
class Stamp:
    """One ArchiveTimeStamp; ``algorithm`` is its chain's (RFC 4998 §5.3, note 4 of the
    vectors: the first ATS's digestAlgorithm, or else its token's imprint algorithm)."""

    algorithm: str
    declared_algorithm: str | None
    reduced: ReducedTree | None
    token: cms.ContentInfo
    gen_time: datetime
    imprint_algorithm: str
    imprint: bytes
    signer_digest_algorithm: str

    @property
    def token_der(self) -> bytes:
        der: bytes = self.token.dump()
        return der


@dataclass(frozen=True)
class Record:
    asn1: asn1.EvidenceRecord
    chains: tuple[tuple[Stamp, ...], ...]

    def dump(self) -> bytes:
        der: bytes = self.asn1.dump()
        return der


def read_record(der: bytes) -> Record:
    try:
        parsed = asn1.EvidenceRecord.load(der, strict=True)
        if parsed["version"].native != 1:
            raise EvidenceFormatError(f"evidence record version {parsed['version'].native}")
        _ = parsed["digest_algorithms"].native, parsed["crypto_infos"].native
        chains = tuple(_chain(c) for c in parsed["archive_time_stamp_sequence"])
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        # asn1crypto parses lazily and reports bad DER with any of these (a Void where content
        # should be gives AttributeError): each is a record we cannot read
        raise EvidenceFormatError(f"not an RFC 4998 evidence record: {e}") from e
    if not chains:
        raise EvidenceFormatError("the evidence record holds no ArchiveTimeStampChain")
    return Record(parsed, chains)


def _chain(chain: asn1.ArchiveTimeStampChain) -> tuple[Stamp, ...]:
    if not len(chain):
        raise EvidenceFormatError("an ArchiveTimeStampChain holds no ArchiveTimeStamp")
    stamps: list[Stamp] = []
    for ats in chain:
        stamps.append(_stamp(ats, stamps[0].algorithm if stamps else None))
    return tuple(stamps)


_SIGNER_VERSION = {"issuer_and_serial_number": "v1", "subject_key_identifier": "v3"}


def _stamp(ats: asn1.ArchiveTimeStamp, chain_algorithm: str | None) -> Stamp:
    token = ats["time_stamp"]
    facts = _token_facts(token.dump())
    declared = ats["digest_algorithm"].native
    reduced = ats["reduced_hashtree"].native
    return Stamp(
        algorithm=chain_algorithm or (declared or {}).get("algorithm") or facts.imprint_algorithm,
        declared_algorithm=None if declared is None else declared["algorithm"],
        reduced=None if reduced is None else tuple(tuple(p) for p in reduced),
        token=token,
        gen_time=facts.gen_time,
        imprint_algorithm=facts.imprint_algorithm,
        imprint=facts.imprint,
        signer_digest_algorithm=facts.signer_digest_algorithm,
    )


@dataclass(frozen=True)
class _TokenFacts:
    gen_time: datetime
    imprint_algorithm: str
    imprint: bytes
    signer_digest_algorithm: str


@functools.lru_cache(maxsize=1024)
def _token_facts(der: bytes) -> _TokenFacts:
    """What the hash layer reads of a token, by its DER. Cached: every record of a run (and of
    a renewal) carries the same tokens, and reading one fully is 90% of judging a record
    (~5 ms of asn1crypto); a token that fails raises every time (exceptions are not cached)."""
    token = cms.ContentInfo.load(der, strict=True)
    if token["content_type"].native != "signed_data":
        raise EvidenceFormatError("an ArchiveTimeStamp's timeStamp is not CMS SignedData")
    signed = token["content"]
    info = signed["encap_content_info"]["content"].parsed
    if not isinstance(info, tsp.TSTInfo):
        raise EvidenceFormatError("an ArchiveTimeStamp's timeStamp is not an RFC 3161 token")
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise EvidenceFormatError("a timestamp token must have exactly one signer")
    # Parse the fields the hash layer leans on now (asn1crypto is lazy), so a damaged token
    # is malformed here and not half-read later. The revocation values stay opaque: real TSAs'
    # tokens carry OCSP responses asn1crypto cannot fully parse (BIN-1 of the vectors).
    _ = info.native, signers.native
    if signers[0]["digest_algorithm"].native not in signed["digest_algorithms"].native:
        raise EvidenceFormatError("a timestamp token's signer uses a digest it does not list")
    # RFC 5652 §5.1/§5.3: fields no signature covers, so a validator must hold them to the rule
    if signed["version"].native != "v3" or signers[0]["version"].native != _SIGNER_VERSION.get(
        signers[0]["sid"].name
    ):
        raise EvidenceFormatError("a timestamp token's CMS version numbers are wrong")
    imprint = info["message_imprint"]
    return _TokenFacts(
        gen_time=info["gen_time"].native,
        imprint_algorithm=imprint["hash_algorithm"]["algorithm"].native,
        imprint=imprint["hashed_message"].native,
        signer_digest_algorithm=signers[0]["digest_algorithm"]["algorithm"].native,
    )


# --- the digests a renewal covers (RFC 4998 §5.2) -----------------------------------------------


def timestamp_renewal_leaf(record: Record) -> bytes:
    """What the next ATS of the last chain covers: H(DER of the last ATS's timeStamp), H the
    chain's algorithm (not the whole ATS: all 17 renewals in the vectors agree)."""
    last = record.chains[-1][-1]
    return digest(last.algorithm, last.token_der)


def hash_tree_renewal_leaf(record: Record, upto: int, algorithm: str, data_digest: bytes) -> bytes:
    """What chain ``upto``'s first ATS covers for one data object: H'(H'(d) ‖ H'(DER of the
    ArchiveTimeStampSequence of chains ``[0, upto)``)). The pair is *not* sorted (RFC 4998 §5.2
    step 4, DSS, BSI; Figure 4's "sorted" is the RFC's own error)."""
    earlier = asn1.ArchiveTimeStampSequence(list(record.asn1["archive_time_stamp_sequence"])[:upto])
    return digest(algorithm, data_digest + digest(algorithm, earlier.dump()))


# --- building ----------------------------------------------------------------------------------


def _ats(
    algorithm: str | None, reduced: Sequence[Sequence[bytes]] | None, token: cms.ContentInfo
) -> asn1.ArchiveTimeStamp:
    fields: dict[str, object] = {"time_stamp": token}
    if algorithm is not None:
        fields["digest_algorithm"] = algos.DigestAlgorithm({"algorithm": hasher_for(algorithm)})
    if reduced is not None:
        fields["reduced_hashtree"] = [list(p) for p in reduced]
    return asn1.ArchiveTimeStamp(fields)


def _assemble(algorithms: Sequence[str], chains: list[asn1.ArchiveTimeStampChain]) -> Record:
    unique = list(dict.fromkeys(algorithms))
    record = asn1.EvidenceRecord(
        {
            "version": 1,
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": a}) for a in unique],
            "archive_time_stamp_sequence": chains,
        }
    )
    return read_record(record.dump())


def new_record(algorithm: str, reduced: ReducedTree, token: cms.ContentInfo) -> Record:
    """The initial record of one data object: its reduced tree and the run's one token."""
    return _assemble([algorithm], [asn1.ArchiveTimeStampChain([_ats(algorithm, reduced, token)])])


def new_record_ders(
    algorithm: str, reduced: Mapping[bytes, ReducedTree], token: cms.ContentInfo
) -> dict[bytes, bytes]:
    """:func:`new_record`'s DER for every leaf of a tree under its one token, byte for byte, at
    a run's scale: asn1crypto re-encodes the whole token (certificates and all) inside every
    record it builds (3.6 ms a record measured); here the fixed parts are encoded once with
    asn1crypto and each record is the concatenation under DER headers (``parser.emit``), the
    reduced tree's OCTET STRINGs and SEQUENCEs included (unit-tested equal to
    :func:`new_record`)."""
    token_der = token.dump()
    name = hasher_for(algorithm)
    declared = algos.DigestAlgorithm({"algorithm": name}, implicit=0).dump()
    version = core.Integer(1).dump()
    algorithms = asn1.DigestAlgorithms([algos.DigestAlgorithm({"algorithm": name})]).dump()
    out = {}
    for leaf, path in reduced.items():
        lists = b"".join(_sequence(b"".join(parser.emit(0, 0, 4, v) for v in p)) for p in path)
        tree = parser.emit(2, 1, 2, lists)  # [2] IMPLICIT ReducedHashtree (context, constructed)
        ats = _sequence(declared + tree + token_der)
        out[leaf] = _sequence(version + algorithms + _sequence(_sequence(ats)))
    return out


def _sequence(contents: bytes) -> bytes:
    der: bytes = parser.emit(0, 1, 16, contents)  # universal, constructed, SEQUENCE
    return der


def renew_timestamp(record: Record, reduced: ReducedTree | None, token: cms.ContentInfo) -> Record:
    """Append a timestamp renewal; ``reduced`` proves :func:`timestamp_renewal_leaf` in a tree
    of many records' renewals (None when the token stamps that leaf directly)."""
    chains = [
        asn1.ArchiveTimeStampChain(list(c)) for c in record.asn1["archive_time_stamp_sequence"]
    ]
    chains[-1] = asn1.ArchiveTimeStampChain([*chains[-1], _ats(None, reduced, token)])
    return _assemble(_algorithms(record), chains)


def renew_hash_tree(
    record: Record, algorithm: str, reduced: ReducedTree, token: cms.ContentInfo
) -> Record:
    """Append a new chain in ``algorithm`` whose reduced tree proves
    :func:`hash_tree_renewal_leaf` of the record's data object(s)."""
    chains = [
        asn1.ArchiveTimeStampChain(list(c)) for c in record.asn1["archive_time_stamp_sequence"]
    ]
    chains.append(asn1.ArchiveTimeStampChain([_ats(algorithm, reduced, token)]))
    return _assemble([*_algorithms(record), algorithm], chains)


def _algorithms(record: Record) -> list[str]:
    return [a["algorithm"].native for a in record.asn1["digest_algorithms"]]
