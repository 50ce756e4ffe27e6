"""The retrieval service: :class:`Retrieval`, the one API the CLI and the portal call.

In: a :class:`~retrieval.access.Principal` (from a password or a session token) and what it
asks for. Out: search hits, a dossier page, an exported zip, grants or audit events, and one
audit event per call, appended and flushed before the answer (or the refusal) is returned.
"""

from retrieval.service.api import Retrieval, index_dir
from retrieval.service.identities import Session
from retrieval.service.query import MAX_RESULTS, Hit, Query, SearchResult

__all__ = ["MAX_RESULTS", "Hit", "Query", "Retrieval", "SearchResult", "Session", "index_dir"]
