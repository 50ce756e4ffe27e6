"""The PKCS#11 key provider's settings: half a configuration is refused before any token is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from archive.core.settings import KeySettings


def test_pkcs11_needs_a_token_and_a_pin_source() -> None:
    with pytest.raises(ValidationError, match="TOKEN_LABEL or PKCS11_TOKEN_SERIAL"):
        KeySettings(provider="pkcs11", pkcs11_pin_file=Path("pin"))
    with pytest.raises(ValidationError, match="PIN_FILE or PKCS11_PIN_ENV"):
        KeySettings(provider="pkcs11", pkcs11_token_label="hsm")
    ok = KeySettings(provider="pkcs11", pkcs11_token_serial="42", pkcs11_pin_env="HSM_PIN")
    assert ok.pkcs11_module is None  # Debian's SoftHSM2, for development
    with pytest.raises(ValidationError):
        KeySettings(pkcs11_label_prefix="no spaces allowed")
