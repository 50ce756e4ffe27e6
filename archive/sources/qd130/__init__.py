"""The QĐ 130/QĐ-BYT source: finished encounters from the social-insurance XML every HIS exports.

Takes a directory of daily ``GIAMDINHHS`` files and single-HOSO files and a
:class:`~archive.sources.Window`; yields an :class:`~archive.sources.EncounterBundle` per HOSO
discharged (``NGAY_RA``) in the window that passes every check, and a
:class:`~archive.sources.QuarantineEntry` with its reason for everything else, exactly like the
FHIR Bulk Data source. The bundle's ``canonical`` bytes are the hospital's HOSO as sent
(``source_kind`` "qd130"); the FHIR mapping the page is rendered from is built from those bytes
where the page is rendered (:func:`archive.sources.page_model`), not here.

Reading is streaming and hardened (:mod:`~archive.sources.qd130.hardening`): no DTD, no entity,
no network, UTF-8 only, bounded depth and sizes; memory stays at one chunk plus the index of the
window's encounters (:mod:`~archive.sources.qd130.collect`).
"""

from archive.sources.qd130.collect import DEFAULT_LIMITS, collect, discover
from archive.sources.qd130.hoso import Limits
from archive.sources.qd130.signature import FacilityTrust, load_facility_trust

__all__ = [
    "DEFAULT_LIMITS",
    "FacilityTrust",
    "Limits",
    "collect",
    "discover",
    "load_facility_trust",
]
