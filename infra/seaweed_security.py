"""SeaweedFS's ``security.toml`` for the embedded stack: what keeps Object Lock from being
bypassed below the S3 layer.

Object Lock lives in SeaweedFS's S3 gateway only. Master, volume and filer would otherwise take
orders from any local process: ``weed shell fs.rm -r /buckets/...`` over gRPC, a DELETE of a
volume needle over HTTP. So, generated once under ``<seaweedfs_dir>/security`` (directory 0700,
every file 0600):

- gRPC mutual TLS for every component and for our own ``weed shell`` (one CA, a certificate per
  component). The CA's private key is never written: nothing can issue another certificate the
  stack would accept, and a new set is generated (with a new CA) when one is missing or near its
  end;
- JWT keys: volume writes and reads (``jwt.signing``, ``jwt.signing.read``), filer writes and reads
  (``jwt.filer_signing``, ``jwt.filer_signing.read``); only the gateway and master mint tokens;
- no directory metadata from the filer's HTTP side.

The keys are in the file SeaweedFS reads (``weed -config_dir``), not in the environment, so the
operator's ``weed shell`` finds the same client certificate. The master's HTTP API, which has no
JWT check (``/col/delete`` drops a bucket's volumes), is switched off by the caller (``weed mini
-disableHttp``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from archive.core.atomic import write_private

# Components of `weed mini` that serve gRPC, and "client" for tools (our weed shell).
COMPONENTS: Final = ("master", "volume", "filer", "s3", "admin", "worker", "client")
_JWT_KEYS: Final = ("signing", "signing.read", "filer_signing", "filer_signing.read")
_VALID: Final = timedelta(days=3650)
_RENEW_BEFORE: Final = timedelta(days=30)
_CA_FILE: Final = "ca.pem"


def security_dir(seaweedfs_dir: Path) -> Path:
    """The ``-config_dir`` handed to every weed process of the stack."""
    return seaweedfs_dir / "security"


def ensure_security(seaweedfs_dir: Path, *, now: datetime | None = None) -> Path:
    """Certificates, JWT keys and ``security.toml`` (each created only if missing or due)."""
    now = now or datetime.now(UTC)
    d = security_dir(seaweedfs_dir)
    d.mkdir(mode=0o700, exist_ok=True)
    os.chmod(d, 0o700)
    if not _certificates_valid(d, now):
        _issue_certificates(d, now)
    keys = _jwt_keys(seaweedfs_dir, d)
    write_private(d / "security.toml", _toml(d, keys))
    return d


def _certificates_valid(d: Path, now: datetime) -> bool:
    for name in (_CA_FILE, *(f"{c}.pem" for c in COMPONENTS)):
        try:
            cert = x509.load_pem_x509_certificate((d / name).read_bytes())
        except (OSError, ValueError):
            return False
        if cert.not_valid_after_utc - _RENEW_BEFORE < now:
            return False
    return all((d / f"{c}.key").is_file() for c in COMPONENTS)


def _issue_certificates(d: Path, now: datetime) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emr-archive seaweedfs grpc CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(d / _CA_FILE, ca.public_bytes(serialization.Encoding.PEM))
    for component in COMPONENTS:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"seaweedfs-{component}")])
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            _builder(name, ca_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(_loopback_names(), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(d / f"{component}.key", pem_key)
        write_private(d / f"{component}.pem", cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + _VALID)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _loopback_names() -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
    )


def _jwt_keys(seaweedfs_dir: Path, d: Path) -> dict[str, str]:
    path = d / "jwt.json"
    keys: dict[str, str] = {}
    if path.exists():
        keys = json.loads(path.read_text(encoding="utf-8"))
    if set(keys) != set(_JWT_KEYS):
        keys = {name: secrets.token_urlsafe(32) for name in _JWT_KEYS}
        write_private(path, json.dumps(keys))
    (seaweedfs_dir / "jwt.json").unlink(missing_ok=True)  # keys of releases before this file
    return keys


def _toml(d: Path, keys: dict[str, str]) -> str:
    lines = [
        "# Written by `emr-archive stack up`; regenerated at every start. Do not edit.",
        "[access]",
        "ui = false",
        "[filer.expose_directory_metadata]",
        "enabled = false",
    ]
    for name in _JWT_KEYS:
        lines += [f"[jwt.{name}]", f"key = {json.dumps(keys[name])}", "expires_after_seconds = 10"]
    lines += ["[grpc]", f"ca = {json.dumps(str(d / _CA_FILE))}"]
    for component in COMPONENTS:
        lines += [
            f"[grpc.{component}]",
            f"cert = {json.dumps(str(d / f'{component}.pem'))}",
            f"key = {json.dumps(str(d / f'{component}.key'))}",
        ]
    return "\n".join(lines) + "\n"
