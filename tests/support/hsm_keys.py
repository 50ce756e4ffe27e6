"""Settings for KEKs on a real SoftHSM2 token, and ways to break the token under a running process.

Tests of one module share a token and tell their keyrings apart by label prefix; a test that
pulls the token out or closes its sessions takes a token of its own.
"""

from __future__ import annotations

import ctypes
import secrets
from pathlib import Path
from typing import Any

import pkcs11
import pytest

from archive.core.settings import KeySettings
from infra.settings import AppSettings
from tests.support.softhsm import SoftToken, new_token

__all__ = ["close_all_sessions", "env_of", "fresh_token", "pkcs11_settings", "side_session"]


def pkcs11_settings(
    base: AppSettings, token: SoftToken, directory: Path, **overrides: Any
) -> AppSettings:
    """``base`` with keys on ``token`` under a label prefix of their own, a keyring_dir in
    ``directory`` (where a local keyring to import would be)."""
    fields: dict[str, Any] = {
        "provider": "pkcs11",
        "pkcs11_module": token.module,
        "pkcs11_token_label": token.label,
        "pkcs11_pin_file": token.pin_file,
        "pkcs11_label_prefix": f"t{secrets.token_hex(3)}/",
        "keyring_dir": directory / "keys",
        **overrides,
    }
    return base.model_copy(update={"data_dir": directory, "keys": KeySettings(**fields)})


def fresh_token(tmp_path_factory: pytest.TempPathFactory) -> SoftToken:
    return new_token(tmp_path_factory, f"kek-{secrets.token_hex(3)}")


def env_of(settings: AppSettings) -> dict[str, str]:
    """The environment the CLI reads these settings from (the PIN stays in its file)."""
    keys = settings.keys
    return {
        "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
        "EMR_ARCHIVE_KEYS__PROVIDER": keys.provider,
        "EMR_ARCHIVE_KEYS__KEYRING_DIR": str(settings.keyring_dir),
        "EMR_ARCHIVE_KEYS__PKCS11_MODULE": str(keys.pkcs11_module),
        "EMR_ARCHIVE_KEYS__PKCS11_TOKEN_LABEL": str(keys.pkcs11_token_label),
        "EMR_ARCHIVE_KEYS__PKCS11_PIN_FILE": str(keys.pkcs11_pin_file),
        "EMR_ARCHIVE_KEYS__PKCS11_LABEL_PREFIX": keys.pkcs11_label_prefix,
    }


def close_all_sessions(token: SoftToken) -> None:
    """What a token reset or another program's C_CloseAllSessions does to our open session."""
    # No session of our own: closing one would log the process out by itself.
    slot = pkcs11.lib(str(token.module)).get_token(token_label=token.label).slot.slot_id
    c = ctypes.CDLL(str(token.module))  # the module this process loaded: same state
    c.C_CloseAllSessions.argtypes = [ctypes.c_ulong]
    c.C_CloseAllSessions.restype = ctypes.c_ulong
    if c.C_CloseAllSessions(slot) != 0:
        raise AssertionError("C_CloseAllSessions failed")


def side_session(token: SoftToken) -> pkcs11.Session:
    """Another session of this process, seeing what its logged-in sessions see. Never closed:
    python-pkcs11's close logs the whole process out of the token."""
    return pkcs11.lib(str(token.module)).get_token(token_label=token.label).open(rw=True)
