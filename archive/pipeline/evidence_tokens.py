"""What every evidence job does with a TSA's answer and with a saved, timestamped tree.

The nightly evidence stage, the timestamp renewal and the hash-tree renewal each ask a TSA to
stamp the root of one hash tree, save the token, and later (possibly after a crash, from the
local cache or the bucket) write per-record objects from what they saved. Two checks guard
that, the same in all three:

* :func:`checked_token`: pyHanko's TSA client checks the response's status and nonce only, so
  the imprint must be the root we asked about (in the algorithm we asked for), and the TSA must
  chain to the TSA trust roots and be valid at the time it stamped;
* :func:`verified_tree`: a saved tree is rebuilt from its leaves and must lead to the saved root
  the token stamps, so a damaged index never produces records that prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from asn1crypto import cms

from archive.core.errors import ArchiveError
from archive.evidence import HashTree, TimestampCheck, TimestampRejectedError
from archive.sign.tsa import tst_info

__all__ = ["checked_token", "verified_tree"]


def checked_token(
    token: cms.ContentInfo, *, root: bytes, algorithm: str, check: TimestampCheck
) -> cms.ContentInfo:
    imprint = tst_info(token)["message_imprint"]
    if (
        imprint["hashed_message"].native != root
        or imprint["hash_algorithm"]["algorithm"].native != algorithm
    ):
        raise TimestampRejectedError("evidence.tsa_wrong_imprint", "TSA stamped another digest")
    check(token, tst_info(token)["gen_time"].native)
    return token


def verified_tree(
    algorithm: str, leaves: Iterable[str], *, root: str, token_der: bytes, what: str
) -> tuple[HashTree, cms.ContentInfo]:
    """The tree over ``leaves`` (hex) and the saved token, once both lead to ``root`` (hex);
    ``what`` names the saved object in the error."""
    tree = HashTree.build(algorithm, (bytes.fromhex(leaf) for leaf in leaves))
    token = cms.ContentInfo.load(token_der)
    stamped = tst_info(token)["message_imprint"]["hashed_message"].native
    if tree.root.hex() != root or stamped != tree.root:
        raise ArchiveError(f"{what}: its leaves do not lead to its timestamped root")
    return tree, token
