"""The write path's settings sections: one frozen model per ``[section]`` of the settings.

Kept apart from :mod:`archive.core.settings`, which reads the environment and the TOML file and
assembles these into :class:`~archive.core.settings.Settings`. The signer's section, the largest,
is in :mod:`archive.core.signer_section`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from archive.core.section_base import Section
from archive.core.signer_section import SignerSettings, normalise_fingerprint
from archive.core.storage_sections import ReplicaSettings, S3Settings

__all__ = [
    "ArchiveSettings",
    "CatalogSettings",
    "ClusterSettings",
    "EvidenceSettings",
    "KeySettings",
    "ReplicaSettings",
    "S3Settings",
    "SealSettings",
    "Section",
    "SignerSettings",
    "StackSettings",
    "normalise_fingerprint",
]

_MiB = 1024 * 1024


class KeySettings(Section):
    """Key-encryption keys and the pseudonym secret."""

    provider: Literal["local", "transit", "pkcs11"] = Field(
        default="local",
        description="'local' keyring files, 'transit': an OpenBao/Vault transit engine, or "
        "'pkcs11': AES keys on an HSM or token",
    )
    keyring_dir: Path | None = Field(default=None, description="unset = <data_dir>/keys")
    kek_id: str = Field(
        default="emr-archive-kek",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="name of the key-encryption key created by `keys init` (local, pkcs11)",
    )
    transit_url: str | None = Field(
        default=None, description="OpenBao/Vault address; unset = the embedded OpenBao"
    )
    transit_mount: str = Field(
        default="transit", pattern=r"^[A-Za-z0-9._/-]{1,128}$", description="transit mount path"
    )
    transit_key: str = Field(
        default="emr-archive-kek",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="transit key that wraps the data keys (created by `keys init`)",
    )
    transit_token_file: Path | None = Field(
        default=None,
        description="file (0600) holding the Vault token, e.g. a Vault Agent sink; unset = the "
        "embedded OpenBao's <data_dir>/openbao/archive-token",
    )
    transit_ca_file: Path | None = Field(
        default=None, description="CA bundle for an https transit_url; unset = system CAs"
    )
    transit_timeout_s: float = Field(default=10.0, gt=0, le=120, description="per request")
    batch_key_objects: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="objects whose data keys one transit-issued batch key wraps (round trips)",
    )
    batch_key_ttl_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="seconds a batch key is used and an unwrapped one cached; also how soon a "
        "running process follows `keys rotate`",
    )

    pkcs11_module: Path | None = Field(
        default=None, description="the HSM's PKCS#11 module; unset = Debian's SoftHSM2"
    )
    pkcs11_token_label: str | None = Field(default=None, description="the token's label")
    pkcs11_token_serial: str | None = Field(default=None, description="or its serial number")
    pkcs11_pin_file: Path | None = Field(default=None, description="file (0600) with the user PIN")
    pkcs11_pin_env: str | None = Field(
        default=None, description="or the environment variable holding it"
    )
    pkcs11_label_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._/-]{0,64}$",
        description="before the token keys' labels <kek_id>.v<n> and <kek_id>.hmac",
    )
    pkcs11_refresh_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="seconds between looks at the token's KEK versions: how soon a running "
        "process follows `keys rotate`",
    )

    @model_validator(mode="after")
    def _pkcs11_complete(self) -> KeySettings:
        if self.provider == "pkcs11" and not (self.pkcs11_token_label or self.pkcs11_token_serial):
            raise ValueError("provider pkcs11 needs PKCS11_TOKEN_LABEL or PKCS11_TOKEN_SERIAL")
        if self.provider == "pkcs11" and not (self.pkcs11_pin_file or self.pkcs11_pin_env):
            raise ValueError("provider pkcs11 needs PKCS11_PIN_FILE or PKCS11_PIN_ENV")
        return self

    @field_validator("transit_url")
    @classmethod
    def _transit_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class SealSettings(Section):
    """Client-side envelope encryption."""

    frame_size: int = Field(
        default=_MiB, ge=4096, le=64 * _MiB, description="bytes per encrypted frame (memory bound)"
    )
    max_plaintext_bytes: int = Field(
        default=512 * _MiB, ge=1, description="larger plaintexts are refused (zstd bombs)"
    )
    zstd_level: int = Field(default=3, ge=1, le=19, description="compression level")


class StackSettings(Section):
    """Ports of the embedded development stack; all bound to 127.0.0.1."""

    # gRPC ports are these + 10000, so every port stays <= 55535.
    s3_port: int = Field(default=18333, ge=1024, le=55535, description="embedded S3 API")
    master_port: int = Field(default=19333, ge=1024, le=55535, description="SeaweedFS master")
    volume_port: int = Field(default=18080, ge=1024, le=55535, description="SeaweedFS volume")
    filer_port: int = Field(default=18888, ge=1024, le=55535, description="SeaweedFS filer")
    admin_port: int = Field(default=18646, ge=1024, le=55535, description="SeaweedFS admin")
    pki_port: int = Field(
        default=18990, ge=1024, le=65535, description="development TSA/OCSP/CRL service"
    )
    replica_port_offset: int = Field(
        default=100, ge=5, le=1000, description="embedded replica site: each port + this"
    )
    volume_max: int = Field(
        default=100, ge=8, description="SeaweedFS volumes (at least one per bucket)"
    )
    prefect_server: bool = Field(
        default=True, description="start a local Prefect server (run history, schedules, UI)"
    )
    prefect_port: int = Field(default=14200, ge=1024, le=65535, description="Prefect API and UI")
    openbao_port: int = Field(
        default=18200, ge=1024, le=65535, description="embedded OpenBao (transit keys only)"
    )


class CatalogSettings(Section):
    """Where the Parquet catalog lives and how long its bucket copies are locked."""

    catalog_dir: Path | None = Field(default=None, description="unset = <data_dir>/catalog")
    manifest_retain_years: int = Field(
        default=100, ge=1, le=1000, description="COMPLIANCE lock on catalog manifest copies"
    )


class ArchiveSettings(Section):
    """The nightly archive run."""

    source_dir: Path | None = Field(
        default=None,
        description="directory read by default: a FHIR Bulk Data export or the HIS's QĐ 130 "
        "XML folder",
    )
    source_format: Literal["auto", "fhir", "qd130"] = Field(
        default="auto",
        description="auto = by what the source holds (manifest.json/*.ndjson: FHIR; *.xml: QĐ 130)",
    )
    facility_certs: Path | None = Field(
        default=None,
        description="PEM file of the facilities' XML signing certificates: a QĐ 130 CHUKYDONVI "
        "signature by any other key is quarantined; unset = checked for integrity only and "
        "recorded as unverified",
    )
    signed_file_max_mib: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="QĐ 130 files up to this size are loaded whole to check their signature "
        "(memory about twice that); larger ones are recorded as unverified",
    )
    qd130_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="processes reading a QĐ 130 folder over 16 MiB; more pays only on idle "
        "cores (each costs about 70 MB, and a fifth more CPU per encounter)",
    )
    source_roots: tuple[Path, ...] = Field(
        default=(),
        description="directories a run may read an export from (symlinks and .. resolved "
        "first); any other source is refused and audited; empty = SOURCE_DIR and "
        "<data_dir>/exports",
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", description="local day boundaries and schedules"
    )
    batch_size: int = Field(default=200, ge=1, le=5000, description="encounters per Prefect task")
    workers: int = Field(default=0, ge=0, le=256, description="worker processes; 0 = all cores")
    lookback_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="nightly window: the N days up to yesterday (archived ones are skipped, so "
        "a missed night or a failed record is caught up); the export must cover them",
    )
    retention_policy: Path | None = Field(
        default=None, description="retention policy TOML; unset = the shipped TT 33/2025 policy"
    )
    quarantine_retain_days: int = Field(
        default=365, ge=1, le=36500, description="COMPLIANCE lock on sealed quarantine entries"
    )
    facilities: dict[str, Path] = Field(
        default={},
        description="facility code (MA_CSKCB) → its export directory: one nightly deployment "
        "per facility, which archives only that facility's encounters; empty = one deployment "
        "over SOURCE_DIR",
    )
    run_lease_minutes: int = Field(
        default=10,
        ge=1,
        le=1440,
        description="a run's lease on its facility in the bucket, renewed every third of it: "
        "a run on a machine that died blocks another for at most this long",
    )

    @field_validator("facilities")
    @classmethod
    def _facility_codes(cls, value: dict[str, Path]) -> dict[str, Path]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", code) or code == "all":
                raise ValueError(f"facility code {code!r}: 1-32 letters, digits, '-' or '_'")
        return value


# When each hash stops being relied on, as EU DSS 6.4's default validation policy dates them
# (policy/constraint.xml, AlgoExpirationDate, after ETSI TS 119 312 v1.5.1 and, for MD5, TS 102
# 176-1). SHA-256/384/512 and SHA-3 are not dated: when a body dates them, the hash-tree renewal
# (``evidence renew --hash``) must happen before, and that date goes here. Our evidence records
# never use MD5/SHA-1/SHA-224; a TSA's signature might.
WEAK_ALGORITHMS_DEFAULT = ("md5@2004-08-01", "sha1@2012-08-01", "sha224@2029-01-01")


def _weak_table(entries: tuple[str, ...]) -> dict[str, datetime]:
    """``ALGORITHM@YYYY-MM-DD`` entries as moments; ValueError on a malformed entry, a hash
    hashlib does not know (a typo would make nothing weak) or one listed twice."""
    out: dict[str, datetime] = {}
    for entry in entries:
        name, _, day = entry.partition("@")
        name = name.strip().lower()  # hashlib's names: sha1, sha256, sha3_256, ...
        if not name or not day:
            raise ValueError(f"{entry!r}: write ALGORITHM@YYYY-MM-DD, e.g. sha1@2012-08-01")
        if name not in hashlib.algorithms_available:
            raise ValueError(f"{entry!r}: {name} is not a hash algorithm this system knows")
        if name in out:
            raise ValueError(f"{name} is listed twice")
        out[name] = datetime.combine(date.fromisoformat(day.strip()), datetime.min.time(), UTC)
    return out


class EvidenceSettings(Section):
    """Renewal of the RFC 4998 evidence records (the monthly ``evidence-renewal`` job)."""

    renew_before_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="renew a tree's proof when its newest timestamp's TSA certificate ends, or "
        "an algorithm it relies on weakens, within this many days",
    )
    tsa_url: str | None = Field(
        default=None,
        description="TSA for renewals; unset = the signer's (it must chain to "
        "SIGNER__TSA_TRUST_ROOTS, which verification trusts)",
    )
    weak_algorithms: tuple[str, ...] = Field(
        default=WEAK_ALGORITHMS_DEFAULT,
        description="ALGORITHM@YYYY-MM-DD: from that day the hash is weak; a proof resting on "
        "it must be renewed before (timestamp digests, hash-tree algorithms)",
    )

    @field_validator("weak_algorithms")
    @classmethod
    def _dated(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _weak_table(value)  # refused at load, not at the first proof judged
        return value

    def weak_since(self) -> dict[str, datetime]:
        """The table as moments (midnight UTC of each day), the form the evidence validator
        takes (:class:`archive.evidence.WeakAlgorithms`): the one table the renewal job plans
        by and verification (now and ``--at``) judges by."""
        return _weak_table(self.weak_algorithms)


class ClusterSettings(Section):
    """Fan-out of the nightly archive, verification and hash-tree renewal over a Dask cluster
    (``prefect-dask``)."""

    scheduler_address: str = Field(
        default="",
        description="Dask scheduler the nightly run, verification and hash-tree renewal send "
        "their batches to, e.g. "
        "tcp://10.0.0.5:8786; empty = a process pool on this machine",
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how long a run waits for the scheduler to answer and a worker to have "
        "joined before it refuses to start (exit 5)",
    )

    @field_validator("scheduler_address")
    @classmethod
    def _dask_address(cls, value: str) -> str:
        if value and not value.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise ValueError("must be a Dask address such as tcp://host:8786 (or empty)")
        return value
