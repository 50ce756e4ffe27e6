"""Audit: hash-chained, sealed event segments, each also locked in the bucket.

Takes events (who, what, when, on which entities, the outcome); returns nothing but a new
segment chained to the one before it. The audit log and the retention and access registers are
such chains; reading one checks its chain and, on request, the locked bucket copies.
"""

from archive.audit.chain import ChainReport, SegmentChain
from archive.audit.log import AUDIT_PREFIX, AuditEvent, AuditLog, audit_dir
from archive.audit.seal import canonical, configured_chain_key

__all__ = [
    "AUDIT_PREFIX",
    "AuditEvent",
    "AuditLog",
    "ChainReport",
    "SegmentChain",
    "audit_dir",
    "canonical",
    "configured_chain_key",
]
