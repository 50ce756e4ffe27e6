"""How the archive connects to an S3 endpoint: the boto3 client, and whose credentials it uses.

Configured credentials win; without them, the embedded stack's (written by ``emr-archive stack
up`` into a private file beside SeaweedFS's data), picked by role: ``admin`` (the write path),
``reader`` (verification, reads) or ``portal`` (reads records, writes only the audit log's and
the access register's prefixes; a production portal gets such an identity through its own
``EMR_ARCHIVE_S3__*`` credentials); without an embedded stack, boto3's standard chain (``AWS_*``
variables, profiles, instance roles). Retries (5xx, SlowDown, throttling, dropped connections)
are botocore's "standard" mode, exponential backoff with jitter, not a hand-written loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config

from archive.core.atomic import write_private
from archive.core.errors import ConfigError
from archive.core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3Role = Literal["admin", "reader", "portal"]
Site = Literal["primary", "replica"]


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"S3Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True, slots=True)
class DevCredentials:
    """Identities the embedded SeaweedFS was started with (``<data_dir>/seaweedfs``, 0600)."""

    admin: S3Credentials
    reader: S3Credentials
    portal: S3Credentials | None = None  # absent in files written before the portal had its own

    FILE_NAME = "credentials.json"

    @classmethod
    def path(cls, seaweedfs_dir: Path) -> Path:
        return seaweedfs_dir / cls.FILE_NAME

    @classmethod
    def load(cls, seaweedfs_dir: Path) -> DevCredentials:
        path = cls.path(seaweedfs_dir)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            portal = S3Credentials(**raw["portal"]) if "portal" in raw else None
            return cls(
                admin=S3Credentials(**raw["admin"]),
                reader=S3Credentials(**raw["reader"]),
                portal=portal,
            )
        except FileNotFoundError:
            raise ConfigError(
                f"no S3 endpoint configured and no embedded stack credentials at {path}: "
                "run `emr-archive stack up`, or set EMR_ARCHIVE_S3__ENDPOINT_URL"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"{path} is not a valid credentials file: delete it and run "
                "`emr-archive stack up` again"
            ) from e

    def save(self, seaweedfs_dir: Path) -> None:
        identities = {"admin": self.admin, "reader": self.reader, "portal": self.portal}
        body = {
            role: {"access_key_id": c.access_key_id, "secret_access_key": c.secret_access_key}
            for role, c in identities.items()
            if c is not None
        }
        write_private(self.path(seaweedfs_dir), json.dumps(body, indent=2))

    def of(self, role: S3Role) -> S3Credentials:
        chosen = {"admin": self.admin, "reader": self.reader, "portal": self.portal}[role]
        if chosen is None:
            raise ConfigError(
                f"the embedded stack has no {role} identity yet: run `emr-archive stack up`"
            )
        return chosen


def make_client(
    settings: Settings, *, read_only: bool = False, role: S3Role = "admin", site: Site = "primary"
) -> S3Client:
    """A boto3 S3 client for the configured endpoint of ``site`` (embedded stack when none is
    set); the replica's section has the primary's shape, with its own endpoint and credentials."""
    s3 = settings.s3 if site == "primary" else settings.replica
    config = Config(
        region_name=s3.region,
        retries={"mode": "standard", "total_max_attempts": s3.max_attempts},
        connect_timeout=s3.connect_timeout_s,
        read_timeout=s3.read_timeout_s,
        # Threads sharing this client each hold a connection while they wait on the store.
        max_pool_connections=s3.max_connections,
        s3={"addressing_style": s3.addressing_style},
        # We send SHA-256 ourselves; avoid botocore adding a second (CRC) checksum per request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    endpoint = settings.s3_endpoint_url if site == "primary" else settings.replica_endpoint_url
    kwargs: dict[str, Any] = {"endpoint_url": endpoint, "config": config}
    creds = _credentials(settings, role="reader" if read_only else role, site=site)
    if creds is not None:
        kwargs["aws_access_key_id"] = creds.access_key_id
        kwargs["aws_secret_access_key"] = creds.secret_access_key
    client: S3Client = boto3.session.Session().client("s3", **kwargs)
    return client


def _credentials(settings: Settings, *, role: S3Role, site: Site) -> S3Credentials | None:
    s3 = settings.s3 if site == "primary" else settings.replica
    if s3.access_key_id and s3.secret_access_key:
        return S3Credentials(s3.access_key_id, s3.secret_access_key.get_secret_value())
    if site == "primary" and settings.uses_embedded_s3:
        return DevCredentials.load(settings.seaweedfs_dir).of(role)
    if site == "replica" and settings.uses_embedded_replica:
        return DevCredentials.load(settings.replica_dir).of(role)
    return None  # boto3's standard chain: AWS_ACCESS_KEY_ID, AWS_PROFILE, instance roles, ...
