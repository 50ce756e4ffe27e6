"""The certomancer configuration of the development PKI, as a Python template.

Validity periods are relative to the generation time and serial numbers are random (two
regenerated dev PKIs never reuse an issuer/serial pair), so the template is code rather than a
static YAML file; :mod:`infra.pki` writes the concrete result to ``var/pki/certomancer.yml``.
Names carry Vietnamese diacritics on purpose: they prove UTF-8 survives certificates, PDF
signature dictionaries and validation reports.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import Any

ARCH = "emr-dev"
SERVICE_KEY_LABELS = (
    "root",
    "issuing-ca",
    "tsa",
    "ocsp",
    "untrusted-root",
    "foreign-tsa",
    "tsa-2",
)
SIGNER_LABELS = (
    "hospital-signer",
    "expired-signer",
    "not-yet-valid-signer",
    "revoked-signer",
    "untrusted-signer",
    "foreign-signer",
)
CERT_LABELS = SERVICE_KEY_LABELS + SIGNER_LABELS

_DAY = timedelta(days=1)
_YEAR = timedelta(days=365)
_SIGNER_LIFETIME = 3 * _YEAR
TSA_LIFETIME = 10 * _YEAR  # the nightly's TSA: what a real TSA certificate gets
ARCHIVE_TSA_LIFETIME = 45 * _YEAR  # the renewal TSA: its chain must hold 30+ years ahead
_CA_LIFETIME = 50 * _YEAR  # outlives the archive TSA (a chain is no longer than its root)

_HOSPITAL = "Bệnh viện Đa khoa Demo"
_ENTITIES = {
    "root": {"organization-name": "emr-archive (phát triển)", "common-name": "EMR Dev Root CA"},
    "issuing-ca": {
        "organization-name": "emr-archive (phát triển)",
        "common-name": "EMR Dev Issuing CA",
    },
    "tsa": {"organization-name": "emr-archive (phát triển)", "common-name": "EMR Dev TSA"},
    # The TSA evidence records are renewed with: its certificate outlives the first TSA's by
    # decades, so a record renewed by it verifies "as of" 30 years ahead (issue #12).
    "tsa-2": {
        "organization-name": "emr-archive (phát triển)",
        "common-name": "EMR Dev Archive TSA",
    },
    "ocsp": {"organization-name": "emr-archive (phát triển)", "common-name": "EMR Dev OCSP"},
    "hospital-signer": {"common-name": f"{_HOSPITAL} — Ký số hồ sơ bệnh án"},
    "expired-signer": {"common-name": f"{_HOSPITAL} — Chứng thư hết hạn"},
    "not-yet-valid-signer": {"common-name": f"{_HOSPITAL} — Chứng thư chưa hiệu lực"},
    "revoked-signer": {"common-name": f"{_HOSPITAL} — Chứng thư đã thu hồi"},
    "untrusted-root": {
        "organization-name": "CA không tin cậy (kiểm thử)",
        "common-name": "Untrusted Dev Root CA",
    },
    "untrusted-signer": {
        "organization-name": "Bệnh viện Giả mạo",
        "common-name": "Bệnh viện Giả mạo — Ký số hồ sơ bệnh án",
    },
    # Valid, from the hospital's own CA, but not the hospital's: what anyone holding a
    # certificate of a national CA could sign with (verification must pin the hospital's).
    "foreign-signer": {
        "organization-name": "Phòng khám Tư nhân Khác",
        "common-name": "Phòng khám Tư nhân Khác — Ký số",
    },
    # A TSA under a CA that a broad signer trust list may include, but the TSA trust roots do not.
    "foreign-tsa": {
        "organization-name": "CA không tin cậy (kiểm thử)",
        "common-name": "Foreign TSA",
    },
}
_SIGNER_ORG = {"organization-name": _HOSPITAL, "state-or-province-name": "Hà Nội"}


def signer_not_after(now: datetime) -> datetime:
    return _start(now) + _SIGNER_LIFETIME


def chain_of(label: str) -> tuple[str, ...]:
    """CA certificates (issuer first) that go into a signer's PKCS#12 file."""
    return ("untrusted-root",) if label == "untrusted-signer" else ("issuing-ca", "root")


def certomancer_config(*, port: int, now: datetime) -> dict[str, Any]:
    keys: dict[str, dict[str, Any]] = {k: {"path": f"{k}.key.pem"} for k in SERVICE_KEY_LABELS}
    keys |= {k: {"path": f"{k}.pub.pem", "public-only": True} for k in SIGNER_LABELS}
    return {
        "external-url-prefix": f"http://127.0.0.1:{port}",
        "keysets": {ARCH: {"path-prefix": "keys", "keys": keys}},
        "pki-architectures": {
            ARCH: {
                "entity-defaults": {"country-name": "VN"},
                "entities": _entities(),
                "certs": _certs(now),
                "services": _services(),
            }
        },
    }


def _entities() -> dict[str, dict[str, str]]:
    entities = {}
    for label, names in _ENTITIES.items():
        if label.endswith("-signer") and label not in ("untrusted-signer", "foreign-signer"):
            names = _SIGNER_ORG | names
        entities[label] = {k: unicodedata.normalize("NFC", v) for k, v in names.items()}
    return entities


def _start(now: datetime) -> datetime:
    # A day of slack for clock skew between this machine and whoever validates.
    return now.replace(microsecond=0) - _DAY


def _certs(now: datetime) -> dict[str, dict[str, Any]]:
    start = _start(now)
    # CAs reach back far enough to have issued the expired signer while they were valid, so a
    # validator reports that signer as expired, not as issued outside its issuer's lifetime.
    ca_from, ca_to = start - 4 * _YEAR, start + _CA_LIFETIME
    certs = {
        "root": _ca("root", "root", ca_from, ca_to),
        "issuing-ca": _ca("issuing-ca", "root", ca_from, ca_to, crl_issuer="root"),
        "untrusted-root": _ca("untrusted-root", "untrusted-root", ca_from, ca_to),
        "tsa": _leaf("issuing-ca", start, start + TSA_LIFETIME, _tsa_extensions()),
        "tsa-2": _leaf("issuing-ca", start, start + ARCHIVE_TSA_LIFETIME, _tsa_extensions()),
        "ocsp": _leaf("issuing-ca", start, start + 10 * _YEAR, _ocsp_extensions()),
        "hospital-signer": _signer("issuing-ca", start, start + _SIGNER_LIFETIME),
        "expired-signer": _signer("issuing-ca", start - 3 * _YEAR, start - 30 * _DAY),
        "not-yet-valid-signer": _signer("issuing-ca", start + _YEAR, start + 4 * _YEAR),
        "revoked-signer": _signer("issuing-ca", start - 7 * _DAY, start + _SIGNER_LIFETIME)
        | {"revocation": {"revoked-since": _iso(start - _DAY), "reason": "key_compromise"}},
        "untrusted-signer": _signer("untrusted-root", start, start + _SIGNER_LIFETIME),
        "foreign-signer": _signer("issuing-ca", start, start + _SIGNER_LIFETIME),
        "foreign-tsa": _leaf(
            "untrusted-root", start, start + 10 * _YEAR, _tsa_extensions("untrusted-root")
        ),
    }
    for spec in certs.values():
        spec["serial"] = secrets.randbits(63) | (1 << 62)  # positive, 63 bits, never tiny
    return certs


def _services() -> dict[str, Any]:
    return {
        "time-stamping": {
            "tsa": {"signing-key": "tsa", "signing-cert": "tsa", "certs-to-embed": ["issuing-ca"]},
            "tsa-2": {
                "signing-key": "tsa-2",
                "signing-cert": "tsa-2",
                "certs-to-embed": ["issuing-ca"],
            },
            "foreign-tsa": {"signing-key": "foreign-tsa", "signing-cert": "foreign-tsa"},
        },
        "ocsp": {
            "issuing-ca": {"for-issuer": "issuing-ca", "responder-cert": "ocsp"},
            "untrusted-root": {"for-issuer": "untrusted-root", "responder-cert": "untrusted-root"},
        },
        "crl-repo": {
            label: {"for-issuer": label, "simulated-update-schedule": "P1D"}
            for label in ("root", "issuing-ca", "untrusted-root")
        },
        "cert-repo": {
            label: {"for-issuer": label, "publish-issued-certs": False}
            for label in ("root", "issuing-ca", "untrusted-root")
        },
    }


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S+0000")


def _validity(start: datetime, end: datetime) -> dict[str, str]:
    return {"valid-from": _iso(start), "valid-to": _iso(end)}


def _key_usage(*usages: str) -> dict[str, Any]:
    return {
        "id": "key_usage",
        "critical": True,
        "smart-value": {"schema": "key-usage", "params": list(usages)},
    }


def _revocation_pointers(issuer: str, *, ocsp: bool = True) -> list[dict[str, Any]]:
    aia: dict[str, Any] = {"ca-issuer-links": [{"repo": issuer}]}
    if ocsp:
        aia["ocsp-responder-names"] = [issuer]
    return [
        {
            "id": "crl_distribution_points",
            "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": [issuer]}},
        },
        {
            "id": "authority_information_access",
            "smart-value": {"schema": "aia-urls", "params": aia},
        },
    ]


def _ca(
    label: str, issuer: str, start: datetime, end: datetime, crl_issuer: str | None = None
) -> dict[str, Any]:
    constraints: dict[str, Any] = {"ca": True}
    extensions = [_key_usage("digital_signature", "key_cert_sign", "crl_sign")]
    if crl_issuer is not None:  # an issuing CA: end entities only, revocation via its issuer
        constraints["path-len-constraint"] = 0
        extensions += _revocation_pointers(crl_issuer, ocsp=False)
    extensions.insert(0, {"id": "basic_constraints", "critical": True, "value": constraints})
    return {
        "subject": label,
        "issuer": issuer,
        "validity": _validity(start, end),
        "extensions": extensions,
    }


def _leaf(
    issuer: str, start: datetime, end: datetime, extensions: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"issuer": issuer, "validity": _validity(start, end), "extensions": extensions}


def _signer(issuer: str, start: datetime, end: datetime) -> dict[str, Any]:
    usage = _key_usage("digital_signature", "non_repudiation")
    return _leaf(issuer, start, end, [usage, *_revocation_pointers(issuer)])


def _tsa_extensions(issuer: str = "issuing-ca") -> list[dict[str, Any]]:
    eku = {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]}
    return [_key_usage("digital_signature"), eku, *_revocation_pointers(issuer)]


def _ocsp_extensions() -> list[dict[str, Any]]:
    eku = {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]}
    # id-pkix-ocsp-nocheck: clients need not check the responder's own certificate (RFC 6960).
    return [_key_usage("digital_signature"), eku, {"id": "ocsp_no_check"}]
