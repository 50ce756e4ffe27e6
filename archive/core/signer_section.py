"""The ``[signer]`` settings section: the hospital's signing key (a PKCS#12 file, a PKCS#11 token
or a remote CSC service), its TSA and the trust roots; re-exported by :mod:`archive.core.sections`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from archive.core.section_base import Section


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
