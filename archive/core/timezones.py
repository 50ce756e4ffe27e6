"""Time zones by IANA name: local day boundaries (discharge days, retention years) are the
hospital's, not UTC's."""

from __future__ import annotations

from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ: Final = "Asia/Ho_Chi_Minh"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; a ``ValueError`` naming it when the system has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TZ!r} "
            "(install the 'tzdata' package where the system has no zone database)"
        ) from e
