"""The portal's settings section (``[portal]``, ``EMR_ARCHIVE_PORTAL__*``), and the settings the
portal process loads."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from archive.core.settings import Section
from verification.settings import VerifySettings


class PortalSettings(Section):
    """The inspectors' web portal (portal/, ``emr-archive portal``). Serve it on loopback and put
    a TLS-terminating proxy in front for other machines (README: the portal in production)."""

    host: str = Field(
        default="127.0.0.1", description="listen address; keep loopback behind a proxy"
    )
    port: int = Field(default=14300, ge=1024, le=65535, description="listen port")
    secure_cookies: bool = Field(
        default=False,
        description="mark the session cookie Secure (HTTPS); unset: true unless host is loopback",
    )
    trusted_proxies: str = Field(
        default="127.0.0.1", description="addresses whose X-Forwarded-* headers are believed"
    )
    export_workers: int = Field(
        default=1, ge=1, le=16, description="processes building dossier exports side by side"
    )
    export_dir: Path | None = Field(
        default=None, description="unset = <data_dir>/portal/exports (deleted once downloaded)"
    )

    @model_validator(mode="before")
    @classmethod
    def _secure_off_loopback(cls, data: Any) -> Any:
        # A portal listening beyond loopback is reached over a network: a session cookie that a
        # plain-HTTP request would carry is a session anyone on the path can take. Only an
        # explicit setting sends it without Secure there.
        if isinstance(data, dict) and data.get("secure_cookies") is None:
            host = str(data.get("host", "127.0.0.1"))
            data = {**data, "secure_cookies": not _loopback(host)}
        return data


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: whatever it resolves to, it was not chosen as loopback
        return False


class PortalAppSettings(VerifySettings):
    """Everything the portal reads: the write path's, verification's and its own settings."""

    portal: PortalSettings = PortalSettings()
