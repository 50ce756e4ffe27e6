"""The transit keyring's one file: secrets the transit key encrypts, kept beside the archive.

``<keyring_dir>/transit.json`` (0600, written atomically, never holding key material in clear)::

    {"format": "emr-archive-transit-keyring", "format_version": 1,
     "transit_key": "emr-archive-kek",
     "pseudonym_secret": "vault:v1:...",
     "legacy": {"kek_id": "emr-archive-kek", "versions": {"1": "vault:v1:...", ...}}}

``pseudonym_secret`` is the never-changing HMAC secret, encrypted by the transit key.
``legacy`` holds the KEK versions of the local keyring this archive used before it switched to
transit, each encrypted by the transit key: objects sealed under them (RFC 3394 wraps in their
headers) keep opening, and only through the transit engine. Absent when nothing was imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from archive.core.errors import KeyringError
from archive.seal.keyfiles import (
    FORMAT_VERSION,
    KEK_ID,
    create_file,
    dump_document,
    invalid_field,
    load_document,
    replace_file,
)

TRANSIT_FILE = "transit.json"
_FORMAT = "emr-archive-transit-keyring"
_CIPHERTEXT = re.compile(r"^[a-z]+:v[1-9][0-9]{0,8}:[A-Za-z0-9+/=]{1,4096}$")


@dataclass(frozen=True, slots=True)
class TransitState:
    transit_key: str
    pseudonym_secret: str  # transit ciphertext
    legacy_kek_id: str | None = None
    legacy_versions: dict[int, str] = field(default_factory=dict)  # version -> transit ciphertext


def encode_state(state: TransitState) -> bytes:
    doc: dict[str, object] = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "transit_key": state.transit_key,
        "pseudonym_secret": state.pseudonym_secret,
    }
    if state.legacy_kek_id is not None:
        versions = {str(v): c for v, c in sorted(state.legacy_versions.items())}
        doc["legacy"] = {"kek_id": state.legacy_kek_id, "versions": versions}
    return dump_document(doc)


def decode_state(path: Path) -> TransitState:
    missing = (
        f"no transit keyring file at {path}: run `emr-archive keys init` with "
        "EMR_ARCHIVE_KEYS__PROVIDER=transit"
    )
    doc = load_document(path, _FORMAT, missing)
    key, secret = doc.get("transit_key"), doc.get("pseudonym_secret")
    if not (isinstance(key, str) and KEK_ID.fullmatch(key)):
        raise invalid_field(path, "transit_key")
    if not (isinstance(secret, str) and _CIPHERTEXT.fullmatch(secret)):
        raise invalid_field(path, "pseudonym_secret")
    legacy = doc.get("legacy")
    if legacy is None:
        return TransitState(key, secret)
    if not isinstance(legacy, dict):
        raise invalid_field(path, "legacy")
    kek_id, versions = legacy.get("kek_id"), legacy.get("versions")
    if not (isinstance(kek_id, str) and KEK_ID.fullmatch(kek_id)):
        raise invalid_field(path, "legacy.kek_id")
    if not isinstance(versions, dict) or not versions:
        raise invalid_field(path, "legacy.versions")
    parsed: dict[int, str] = {}
    for name, ciphertext in versions.items():
        if not (isinstance(name, str) and name.isdecimal() and int(name) >= 1):
            raise invalid_field(path, "legacy.versions")
        if not (isinstance(ciphertext, str) and _CIPHERTEXT.fullmatch(ciphertext)):
            raise invalid_field(path, f"legacy.versions.{name}")
        parsed[int(name)] = ciphertext
    return TransitState(key, secret, kek_id, parsed)


def write_state(path: Path, state: TransitState, *, replace: bool) -> None:
    """Create (never clobbering a concurrent ``keys init``) or replace (after a re-wrap)."""
    if replace:
        replace_file(path, encode_state(state))
    else:
        create_file(path, encode_state(state))


def check_key(state: TransitState, transit_key: str, path: Path) -> None:
    if state.transit_key != transit_key:
        raise KeyringError(
            f"{path} belongs to transit key {state.transit_key!r} but the settings name "
            f"{transit_key!r}: set EMR_ARCHIVE_KEYS__TRANSIT_KEY to the keyring's key"
        )
