"""The write path's settings sections: one frozen model per ``[section]`` of the settings.

Kept apart from :mod:`archive.core.settings`, which reads the environment and the TOML file and
assembles these into :class:`~archive.core.settings.Settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

# The storage sections and the base live in their own module (this one would pass 400 lines).
from archive.core.storage_sections import ReplicaSettings as ReplicaSettings
from archive.core.storage_sections import S3Settings as S3Settings
from archive.core.storage_sections import Section as Section

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


class SignerSettings(Section):
    """The hospital's signing certificate and the timestamp authority."""

    pkcs12_path: Path | None = Field(default=None, description="unset = development PKI")
    certificate: Path | None = Field(
        default=None,
        description="the hospital's signing certificate (PEM/DER, public): hosts that only "
        "validate pin it without the PKCS#12 password; unset = read from the PKCS#12",
    )
    pkcs12_password_env: str | None = Field(
        default=None, description="name of an environment variable holding the PKCS#12 password"
    )
    pkcs12_password_file: Path | None = Field(
        default=None, description="file (0600) holding the PKCS#12 password"
    )
    pkcs11_module: Path | None = Field(
        default=None,
        description="PKCS#11 module of the hospital's token or HSM (e.g. the CA's "
        "/usr/lib/viettel-ca_v6.so), set instead of PKCS12_PATH; with DEV_TOKEN: the SoftHSM2 "
        "module if not Debian's",
    )
    pkcs11_token_label: str | None = Field(default=None, description="the token's label")
    pkcs11_token_serial: str | None = Field(
        default=None, description="the token's serial number (instead of, or besides, its label)"
    )
    pkcs11_key_id: str | None = Field(
        default=None,
        description="CKA_ID of the private key, hex (`pkcs11-tool --list-objects` shows it); "
        "by id because key and certificate labels differ on some tokens",
    )
    pkcs11_cert_id: str | None = Field(
        default=None, description="CKA_ID of the signing certificate, hex; unset = the key's id"
    )
    pkcs11_pin_file: Path | None = Field(
        default=None, description="file (0600) holding the token's user PIN"
    )
    pkcs11_pin_env: str | None = Field(
        default=None, description="name of an environment variable holding the token's user PIN"
    )
    chain: tuple[Path, ...] = Field(
        default=(),
        description="PEM/DER intermediate CA certificates completing the token signer's chain "
        "(besides the certificates on the token)",
    )
    dev_token: bool = Field(
        default=False,
        description="development PKI only: its signer's key on a SoftHSM2 token under "
        "data_dir/softhsm, signing through PKCS#11 (`make demo SIGNER_TOKEN=1`)",
    )
    tsa_url: str | None = Field(default=None, description="RFC 3161 TSA; unset = development TSA")
    trust_roots: tuple[Path, ...] = Field(
        default=(), description="PEM/DER CA certificates trusted for validation; empty = dev CA"
    )
    tsa_trust_roots: tuple[Path, ...] = Field(
        default=(),
        description="PEM/DER CA certificates every timestamp's TSA must chain to; empty = dev CA",
    )
    pinned_signers: tuple[str, ...] = Field(
        default=(),
        description="past hospital signing certificates still accepted besides the configured "
        "one and the catalog's: SHA-256 fingerprints (hex, colons allowed) or certificate files",
    )
    ocsp_url_override: str | None = Field(
        default=None, description="force one OCSP responder instead of the certificates' AIA"
    )
    # Remote signing over the CSC API (archive.sign.csc): instead of PKCS12_PATH.
    csc_service_url: str | None = Field(
        default=None,
        description="CSC remote signing service (the part before /csc/v1/...); instead of "
        "PKCS12_PATH",
    )
    csc_credential_id: str | None = Field(
        default=None, description="the hospital's credential at the CSC service"
    )
    csc_token_file: Path | None = Field(
        default=None, description="file (0600) holding the CSC service's OAuth2 access token"
    )
    csc_token_env: str | None = Field(
        default=None,
        description="name of an environment variable holding the CSC service's access token",
    )
    csc_batch_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="signatures authorised at once (capped by the credential's multisign)",
    )

    @field_validator("csc_service_url")
    @classmethod
    def _csc_https_url(cls, value: str | None) -> str | None:
        # The access token travels in every request: plain HTTP would hand it to the network.
        if value is None:
            return None
        url = urlsplit(value)
        loopback = url.scheme == "http" and url.hostname in ("127.0.0.1", "::1", "localhost")
        if url.scheme != "https" and not loopback:
            raise ValueError("must start with https:// (http:// only on loopback)")
        return value.rstrip("/")

    @field_validator("pinned_signers")
    @classmethod
    def _fingerprints_normalised(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # `openssl x509 -fingerprint -sha256` prints AB:CD:...; compare one spelling only.
        return tuple(normalise_fingerprint(v) or v for v in value)

    @model_validator(mode="after")
    def _all_or_nothing(self) -> SignerSettings:
        # Half a production configuration would silently sign with the development TSA or trust
        # the development CA: refuse it.
        self._one_key_source()
        key = (
            self.pkcs12_path is not None
            or self.csc_service_url is not None
            or (self.pkcs11_module is not None and not self.dev_token)
        )
        production = {
            "EMR_ARCHIVE_SIGNER__PKCS12_PATH (or __PKCS11_MODULE or __CSC_SERVICE_URL)": key,
            "EMR_ARCHIVE_SIGNER__TSA_URL": self.tsa_url is not None,
            "EMR_ARCHIVE_SIGNER__TRUST_ROOTS": bool(self.trust_roots),
            "EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS": bool(self.tsa_trust_roots),
        }
        if any(production.values()) and not all(production.values()):
            missing = ", ".join(name for name, given in production.items() if not given)
            raise ValueError(
                "a production signer needs all of PKCS12_PATH (or PKCS11_MODULE or "
                "CSC_SERVICE_URL), TSA_URL, TRUST_ROOTS and "
                f"TSA_TRUST_ROOTS; missing {missing} (or unset all four to use the development "
                "PKI)"
            )
        if self.pkcs12_path is not None and not (
            self.pkcs12_password_env or self.pkcs12_password_file
        ):
            raise ValueError("set PKCS12_PASSWORD_ENV or PKCS12_PASSWORD_FILE for the PKCS#12")
        if self.csc_service_url is not None and not (
            self.csc_credential_id and (self.csc_token_file or self.csc_token_env)
        ):
            raise ValueError(
                "a CSC signer needs CSC_CREDENTIAL_ID and CSC_TOKEN_FILE or CSC_TOKEN_ENV"
            )
        return self

    def _one_key_source(self) -> None:
        if self.dev_token and (
            self.pkcs12_path is not None
            or self.tsa_url is not None
            or self.csc_service_url is not None
        ):
            raise ValueError("DEV_TOKEN is for the development PKI: unset it in production")
        token = self.pkcs11_module is not None and not self.dev_token
        given = [self.pkcs12_path is not None, token, self.csc_service_url is not None]
        if sum(given) > 1:
            raise ValueError(
                "set one of PKCS12_PATH, PKCS11_MODULE or CSC_SERVICE_URL, not several"
            )
        if not token:
            return
        if not self.pkcs11_key_id:
            raise ValueError("a token key needs PKCS11_KEY_ID (hex): labels are not reliable")
        if not (self.pkcs11_token_label or self.pkcs11_token_serial):
            raise ValueError("name the token: set PKCS11_TOKEN_LABEL or PKCS11_TOKEN_SERIAL")
        if not (self.pkcs11_pin_file or self.pkcs11_pin_env):
            raise ValueError("set PKCS11_PIN_FILE (0600) or PKCS11_PIN_ENV for the token's PIN")

    @field_validator("pkcs11_key_id", "pkcs11_cert_id")
    @classmethod
    def _hex_id(cls, value: str | None) -> str | None:
        # `pkcs11-tool` prints ids as hex; some documents write them with colons or spaces.
        if value is None:
            return None
        digits = value.replace(":", "").replace(" ", "").lower()
        try:
            bytes.fromhex(digits)
        except ValueError as e:
            raise ValueError(f"{value!r} is not a hex object id (e.g. 5e01)") from e
        if not digits:
            raise ValueError("an object id must not be empty")
        return digits


def normalise_fingerprint(text: str) -> str | None:
    """``text`` as 64 lowercase hex digits if it is a SHA-256 fingerprint, else None (a path)."""
    digits = text.strip().replace(":", "").lower()
    if len(digits) == 64 and all(c in "0123456789abcdef" for c in digits):
        return digits
    return None


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
    volume_max: int = Field(default=100, ge=8, description="SeaweedFS volumes (~7 per bucket)")
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
