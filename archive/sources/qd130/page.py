"""The FHIR model a QĐ 130 record's page is rendered from, built in the render worker.

Collection checks every table and field of a HOSO and hands on its bytes (the bundle's
``canonical``) with the facts the catalog and the retention policy need, but not the FHIR
mapping of its tables: building that was a third of collection's CPU, spent on the one core that
feeds every render worker, and made each bundle several times larger to send to them. The render
worker reads the embedded bytes back here (the same hardened parser and table checks) and maps
them (:func:`~archive.sources.qd130.mapping.page_model`). Bytes the collector accepted read back
the same way; anything else (bytes changed in between) is a :class:`SourceError` naming the
reason, never a page of something else.
"""

from __future__ import annotations

from typing import Any

from archive.core.errors import SourceError
from archive.sources.model import EncounterBundle
from archive.sources.qd130.collect import DEFAULT_LIMITS
from archive.sources.qd130.fields import FieldError
from archive.sources.qd130.hardening import XmlRefusedError
from archive.sources.qd130.hoso import Limits, read_hoso
from archive.sources.qd130.mapping import page_model
from archive.sources.quarantine import QuarantineReason as R


def record_model(bundle: EncounterBundle, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The FHIR Bundle for the page of a QĐ 130 record (``source_kind`` "qd130")."""
    tz = bundle.discharged_at.tzinfo
    if bundle.source_kind != "qd130" or tz is None:
        raise SourceError("not a QĐ 130 record: its page model is its own bundle")
    try:
        hoso = read_hoso(bundle.canonical, tz, limits, embedded=True)
        if hoso.summary["MA_LK"] != bundle.encounter_id:
            raise FieldError(R.MALFORMED_RESOURCE, "the embedded HOSO is another encounter's")
        return page_model(hoso, tz)
    except (XmlRefusedError, FieldError) as e:
        raise SourceError(
            f"a QĐ 130 record's embedded HOSO no longer reads back ({e.reason.value}: {e.detail})"
        ) from None
