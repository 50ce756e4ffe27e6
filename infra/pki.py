"""The development PKI: generated once into ``var/pki``, served by :mod:`infra.pki_service`.

A root CA and an issuing CA (the shape of Vietnam's national root → licensed CA → subscriber),
the hospital's signing certificate, a TSA, an OCSP responder and CRLs, plus the misfits tests
need: an expired, a not-yet-valid and a revoked signer, a signer from a separate CA that is
not trusted, a valid signer of the same CA that is not the hospital's, and a TSA under the
separate CA. certomancer turns the configuration into certificates; the service answers from the
same configuration, so both always agree.

Key choices (why, not what):

* Signers are RSA-2048: what Vietnamese public CAs issue to organisations, so signing code and
  signature sizes match production. CA, TSA and OCSP keys are EC P-256: certomancer re-parses the
  private key on every signature it makes, which costs ~38 ms for RSA-2048 (key validation) and
  ~0.02 ms for P-256 — the difference between a slow and a fast TSA.
* ECDSA signatures are randomised, so certomancer would mint *different* certificate bytes each
  time it loads the configuration. Every certificate is therefore generated once, written to
  ``certs/`` and pinned in the configuration with ``certificate-file``.
* The service's port is baked into the certificates' CRL and OCSP URLs. A PKI generated for
  another port is refused, not regenerated: a new root would orphan everything signed with the
  old one.
* Generation happens in a temporary sibling directory renamed into place, so a crash never
  leaves half a PKI and two processes racing to create it agree on one.
"""

from __future__ import annotations

import http.client
import json
import secrets
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from archive.core.atomic import write_atomic
from infra import pki_config
from infra.errors import PkiError

ARCH = pki_config.ARCH
# 2: a foreign signer and a foreign TSA for the pinning tests; 3: a second, long-lived TSA
# (evidence-record renewal) and CAs that outlive it
FORMAT_VERSION = 3
MANIFEST_FILE = "dev-pki.json"
CONFIG_FILE = "certomancer.yml"
_PRIVATE_DIR_MODE = 0o700
_SECRET_FILE_MODE = 0o600


@dataclass(frozen=True)
class P12Credential:
    """A signer as production configures one: a PKCS#12 file and a file holding its password."""

    p12: Path
    password_file: Path

    def read_password(self) -> bytes:
        return self.password_file.read_bytes().rstrip(b"\r\n")


@dataclass(frozen=True)
class DevPki:
    """Where the generated development PKI lives, and the URLs its service answers on."""

    pki_dir: Path
    port: int

    @property
    def certomancer_config(self) -> Path:
        return self.pki_dir / CONFIG_FILE

    @property
    def trust_root(self) -> Path:
        """PEM of the root CA: the only trust anchor a validator needs."""
        return self.pki_dir / "trust-root.pem"

    @property
    def ca_chain(self) -> Path:
        """PEM of the issuing CA followed by the root."""
        return self.pki_dir / "ca-chain.pem"

    @property
    def untrusted_root(self) -> Path:
        """PEM of the separate CA that issued :attr:`untrusted_signer` (never trust it)."""
        return self.pki_dir / "untrusted-root.pem"

    @property
    def signer(self) -> P12Credential:
        return self.credential("hospital-signer")

    @property
    def expired_signer(self) -> P12Credential:
        return self.credential("expired-signer")

    @property
    def not_yet_valid_signer(self) -> P12Credential:
        return self.credential("not-yet-valid-signer")

    @property
    def revoked_signer(self) -> P12Credential:
        return self.credential("revoked-signer")

    @property
    def untrusted_signer(self) -> P12Credential:
        return self.credential("untrusted-signer")

    @property
    def foreign_signer(self) -> P12Credential:
        """Valid and issued by the hospital's CA, but not the hospital's signing certificate."""
        return self.credential("foreign-signer")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ARCH}"

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/tsa/tsa"

    @property
    def archive_tsa_url(self) -> str:
        """The second TSA ("EMR Dev Archive TSA", ``tsa-2``), valid decades longer than the
        first: what evidence-record renewals are stamped by in development."""
        return f"{self.base_url}/tsa/tsa-2"

    @property
    def foreign_tsa_url(self) -> str:
        """A TSA under :attr:`untrusted_root`: never one of the TSA trust roots."""
        return f"{self.base_url}/tsa/foreign-tsa"

    @property
    def ocsp_url(self) -> str:
        """OCSP responder for certificates issued by the issuing CA (POST)."""
        return f"{self.base_url}/ocsp/issuing-ca"

    def crl_url(self, issuer: str = "issuing-ca") -> str:
        """Latest CRL of ``issuer``: ``issuing-ca``, ``root`` or ``untrusted-root`` (GET)."""
        return f"{self.base_url}/crls/{issuer}/latest.crl"

    def cert_path(self, label: str) -> Path:
        """PEM of one generated certificate, by its label (e.g. ``tsa``, ``revoked-signer``)."""
        return self.pki_dir / "certs" / f"{label}.cert.pem"

    def credential(self, label: str) -> P12Credential:
        """The PKCS#12 file and password file of a signer, by its label."""
        signers = self.pki_dir / "signers"
        return P12Credential(p12=signers / f"{label}.p12", password_file=signers / f"{label}.pass")

    def required_files(self) -> tuple[Path, ...]:
        creds = (
            self.signer,
            self.expired_signer,
            self.not_yet_valid_signer,
            self.revoked_signer,
            self.untrusted_signer,
            self.foreign_signer,
        )
        files = [self.certomancer_config, self.trust_root, self.ca_chain, self.untrusted_root]
        files += [p for c in creds for p in (c.p12, c.password_file)]
        files += [self.cert_path(label) for label in pki_config.CERT_LABELS]
        return tuple(files)


def ensure_dev_pki(pki_dir: Path, *, port: int, now: datetime) -> DevPki:
    """Return the development PKI in ``pki_dir``, generating it first if there is none.

    Idempotent: an existing PKI is checked (complete, same port, not expired, private files
    private) and reused untouched. Raises :class:`PkiError` saying what to do otherwise.
    """
    if now.tzinfo is None:
        raise PkiError("ensure_dev_pki needs a timezone-aware 'now' (e.g. datetime.now(UTC))")
    pki = DevPki(pki_dir=pki_dir, port=port)
    if not (pki_dir / MANIFEST_FILE).is_file():
        _generate_into_place(pki, now.astimezone(UTC))
    _check_existing(pki, now)
    return pki


def _generate_into_place(pki: DevPki, now: datetime) -> None:
    if (pki.pki_dir / MANIFEST_FILE).is_file():
        return  # another process finished generating it a moment ago
    if pki.pki_dir.exists() and any(pki.pki_dir.iterdir()):
        raise PkiError(
            f"{pki.pki_dir} exists but holds no complete development PKI ({MANIFEST_FILE} is "
            "missing): delete the directory and run again to generate one"
        )
    pki.pki_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{pki.pki_dir.name}.", dir=pki.pki_dir.parent))
    try:
        _generate(DevPki(pki_dir=staging, port=pki.port), now)
        staging.rename(pki.pki_dir)  # replaces an empty directory; fails if another won the race
    except OSError as e:
        if (pki.pki_dir / MANIFEST_FILE).is_file():
            return  # another process generated it concurrently: use theirs
        raise PkiError(f"could not generate the development PKI in {pki.pki_dir}: {e}") from e
    except ValueError as e:  # certomancer's ConfigurationError is a ValueError
        raise PkiError(f"could not generate the development PKI: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _generate(staging: DevPki, now: datetime) -> None:
    from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig  # slow import

    root = staging.pki_dir
    keys_dir, signers_dir, certs_dir = root / "keys", root / "signers", root / "certs"
    for d in (keys_dir, signers_dir):
        d.mkdir(mode=_PRIVATE_DIR_MODE)
    certs_dir.mkdir()
    signer_keys = _generate_keys(keys_dir)
    config = pki_config.certomancer_config(port=staging.port, now=now)
    arch = CertomancerConfig(config, key_search_dir=str(root)).get_pki_arch(ArchLabel(ARCH))
    certs = {label: arch.get_cert(CertLabel(label)).dump() for label in pki_config.CERT_LABELS}
    for label, der in certs.items():
        staging.cert_path(label).write_bytes(_pem(der))
        config["pki-architectures"][ARCH]["certs"][label]["certificate-file"] = (
            f"certs/{label}.cert.pem"
        )
    _write_yaml(staging.certomancer_config, config)
    _export_signers(staging, signer_keys, certs)
    staging.trust_root.write_bytes(_pem(certs["root"]))
    staging.ca_chain.write_bytes(_pem(certs["issuing-ca"]) + _pem(certs["root"]))
    staging.untrusted_root.write_bytes(_pem(certs["untrusted-root"]))
    manifest = {
        "format": FORMAT_VERSION,
        "port": staging.port,
        "generated_at": now.isoformat(),
        "signer_not_after": pki_config.signer_not_after(now).isoformat(),
    }
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")  # written last


def _generate_keys(keys_dir: Path) -> dict[str, rsa.RSAPrivateKey]:
    """Write service keys (private) and signer public keys; return signer private keys.

    Signer private keys exist only inside their encrypted PKCS#12 files, as in production.
    """
    for label in pki_config.SERVICE_KEY_LABELS:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_secret(keys_dir / f"{label}.key.pem", pem)
    signer_keys = {}
    for label in pki_config.SIGNER_LABELS:
        signer_keys[label] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = (
            signer_keys[label]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (keys_dir / f"{label}.pub.pem").write_bytes(public)
    return signer_keys


def _export_signers(
    staging: DevPki, signer_keys: dict[str, rsa.RSAPrivateKey], certs: dict[str, bytes]
) -> None:
    for label, key in signer_keys.items():
        chain_labels = pki_config.chain_of(label)
        credential = staging.credential(label)
        password = secrets.token_urlsafe(32).encode()
        p12 = pkcs12.serialize_key_and_certificates(
            name=label.encode(),
            key=key,
            cert=x509.load_der_x509_certificate(certs[label]),
            cas=[x509.load_der_x509_certificate(certs[c]) for c in chain_labels],
            encryption_algorithm=serialization.BestAvailableEncryption(password),
        )
        _write_secret(credential.password_file, password)
        _write_secret(credential.p12, p12)


def _check_existing(pki: DevPki, now: datetime) -> None:
    manifest_path = pki.pki_dir / MANIFEST_FILE
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        not_after = datetime.fromisoformat(manifest["signer_not_after"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PkiError(f"{manifest_path} is unreadable ({e}): delete {pki.pki_dir}") from e
    if manifest.get("format") != FORMAT_VERSION:
        raise PkiError(
            f"{pki.pki_dir} holds a development PKI of format {manifest.get('format')!r}, this "
            f"code needs format {FORMAT_VERSION}: delete the directory to generate a new one"
        )
    if manifest.get("port") != pki.port:
        raise PkiError(
            f"the development PKI in {pki.pki_dir} was generated for port {manifest.get('port')} "
            f"(its certificates name that port in their CRL/OCSP URLs), not {pki.port}: set "
            f"EMR_ARCHIVE_STACK__PKI_PORT={manifest.get('port')}, or delete {pki.pki_dir} to "
            "generate a new PKI (documents signed with the old one will no longer validate)"
        )
    if now >= not_after:
        raise PkiError(
            f"the development signing certificate in {pki.pki_dir} expired on {not_after:%Y-%m-%d}"
            f": delete {pki.pki_dir} to generate a new development PKI"
        )
    missing = [str(p) for p in pki.required_files() if not p.is_file()]
    if missing:
        raise PkiError(f"development PKI incomplete, missing {missing}: delete {pki.pki_dir}")
    _check_private(pki)


def _check_private(pki: DevPki) -> None:
    secret_files = list((pki.pki_dir / "keys").glob("*.key.pem"))
    secret_files += list((pki.pki_dir / "signers").iterdir())
    for path in [pki.pki_dir / "keys", pki.pki_dir / "signers", *secret_files]:
        if path.stat().st_mode & 0o077:
            raise PkiError(
                f"{path} is readable by other users: run `chmod go-rwx {path}` (private keys and "
                "passwords must be 0600, their directories 0700)"
            )


def _write_secret(path: Path, data: bytes) -> None:
    # Whole or not at all, never over an existing key (a second `stack up` must not clobber it).
    write_atomic(path, data, mode=_SECRET_FILE_MODE, exclusive=True)


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _write_yaml(path: Path, config: dict[str, Any]) -> None:
    import yaml  # PyYAML ships no stubs; certomancer needs it

    header = "# Generated by infra/pki.py for the development PKI. Do not edit: delete the\n"
    header += "# directory and run `emr-archive stack up` again to regenerate.\n"
    body = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    path.write_text(header + body, encoding="utf-8")


def probe(tsa_url: str, *, timeout_s: float = 5.0) -> None:
    """Ask ``tsa_url`` for a real RFC 3161 timestamp; raise :class:`PkiError` unless granted.

    Used by the health check: a TCP connect or a GET would pass while the TSA cannot sign.
    Proxies from the environment are ignored, as pyHanko's own TSA client ignores them.
    """
    if not tsa_url.startswith(("http://", "https://")):
        raise PkiError(f"TSA URL {tsa_url!r} must start with http:// or https://")
    digest, nonce = secrets.token_bytes(32), secrets.randbits(63)
    query = _timestamp_query(digest, nonce)
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        tsa_url, data=query, headers={"Content-Type": "application/timestamp-query"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout_s) as response:
            content_type, body = response.headers.get("Content-Type"), response.read()
    except (OSError, http.client.HTTPException) as e:
        raise PkiError(
            f"the TSA at {tsa_url} does not answer ({e}): start the stack (`emr-archive stack "
            "up`) or fix EMR_ARCHIVE_SIGNER__TSA_URL"
        ) from e
    if content_type != "application/timestamp-reply":
        raise PkiError(f"{tsa_url} answered {content_type!r}, not an RFC 3161 timestamp reply")
    _check_timestamp_reply(tsa_url, body, digest, nonce)


def _timestamp_query(digest: bytes, nonce: int) -> bytes:
    from asn1crypto import algos, tsp

    sha256 = algos.DigestAlgorithm({"algorithm": "sha256"})
    imprint = {"hash_algorithm": sha256, "hashed_message": digest}
    req = {"version": "v1", "message_imprint": imprint, "nonce": nonce, "cert_req": True}
    return bytes(tsp.TimeStampReq(req).dump())


def _check_timestamp_reply(tsa_url: str, body: bytes, digest: bytes, nonce: int) -> None:
    from asn1crypto import tsp

    try:
        reply = tsp.TimeStampResp.load(body)
        status = reply["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise PkiError(f"the TSA at {tsa_url} refused a timestamp request (status {status})")
        tst_info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
        granted_digest = tst_info["message_imprint"]["hashed_message"].native
        granted_nonce = tst_info["nonce"].native
    except (ValueError, TypeError, KeyError) as e:
        raise PkiError(f"the TSA at {tsa_url} sent a malformed timestamp reply: {e}") from e
    if granted_digest != digest or granted_nonce != nonce:
        raise PkiError(f"the TSA at {tsa_url} timestamped something other than what was asked")
