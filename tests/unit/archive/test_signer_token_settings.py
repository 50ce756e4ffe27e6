"""The signer's token settings: ids in hex, one key source, a PIN never on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.core.errors import ConfigError
from archive.sign.config import SOFTHSM_MODULE, SignerConfig, dev_token_config, read_secret
from infra.settings import load_app_settings as load_settings

_TOKEN = {
    "EMR_ARCHIVE_SIGNER__PKCS11_MODULE": "/usr/lib/viettel-ca_v6.so",
    "EMR_ARCHIVE_SIGNER__PKCS11_TOKEN_LABEL": "VIETTEL-CA",
    "EMR_ARCHIVE_SIGNER__PKCS11_KEY_ID": "A1:B2",
    "EMR_ARCHIVE_SIGNER__PKCS11_CERT_ID": "a1b3",
    "EMR_ARCHIVE_SIGNER__PKCS11_PIN_FILE": "/etc/emr-archive/token.pin",
    "EMR_ARCHIVE_SIGNER__TSA_URL": "https://tsa.example.vn",
    "EMR_ARCHIVE_SIGNER__TRUST_ROOTS": '["/etc/emr-archive/root.pem"]',
    "EMR_ARCHIVE_SIGNER__TSA_TRUST_ROOTS": '["/etc/emr-archive/root.pem"]',
    "EMR_ARCHIVE_SIGNER__CHAIN": '["/etc/emr-archive/viettel-ca.pem"]',
}


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_a_token_signer_is_selected_by_ids_in_hex(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, _TOKEN)
    settings = load_settings()
    assert not settings.uses_dev_pki
    config = SignerConfig.from_settings(settings)
    assert config.pkcs12_path is None
    assert config.pkcs11 is not None
    assert config.pkcs11.key_id == bytes.fromhex("a1b2")
    assert config.pkcs11.cert_id == bytes.fromhex("a1b3")
    assert config.pkcs11.token_label == "VIETTEL-CA"
    assert config.pkcs11.chain == (Path("/etc/emr-archive/viettel-ca.pem"),)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"EMR_ARCHIVE_SIGNER__PKCS11_KEY_ID": "zz"}, "not a hex object id"),
        ({"EMR_ARCHIVE_SIGNER__PKCS11_KEY_ID": ""}, "PKCS11_KEY_ID"),
        ({"EMR_ARCHIVE_SIGNER__PKCS11_TOKEN_LABEL": ""}, "PKCS11_TOKEN_LABEL or"),
        ({"EMR_ARCHIVE_SIGNER__PKCS11_PIN_FILE": ""}, "PKCS11_PIN_FILE"),
        ({"EMR_ARCHIVE_SIGNER__PKCS12_PATH": "/etc/k.p12"}, "not several"),
        ({"EMR_ARCHIVE_SIGNER__TSA_URL": ""}, "TSA_URL"),
        ({"EMR_ARCHIVE_SIGNER__DEV_TOKEN": "true"}, "DEV_TOKEN is for the development PKI"),
    ],
)
def test_half_a_token_configuration_is_refused(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], words: str
) -> None:
    values = {**_TOKEN, **change}
    _set(monkeypatch, {k: v for k, v in values.items() if v})
    with pytest.raises(ConfigError, match=words):
        load_settings()


def test_the_development_token_lives_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMR_ARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EMR_ARCHIVE_SIGNER__DEV_TOKEN", "true")
    settings = load_settings()
    assert settings.uses_dev_pki
    config = SignerConfig.from_settings(settings)
    assert config.pkcs12_path is None
    assert config.pkcs11 == dev_token_config(settings)
    assert config.pkcs11.module == SOFTHSM_MODULE
    assert config.pkcs11.pin_file == tmp_path / "softhsm" / "user.pin"
    assert dict(config.pkcs11.module_environment) == {
        "SOFTHSM2_CONF": str(tmp_path / "softhsm" / "softhsm2.conf")
    }


def test_a_pin_file_others_can_read_is_refused(tmp_path: Path) -> None:
    pin = tmp_path / "token.pin"
    pin.write_text("123456\n")
    pin.chmod(0o640)

    def read() -> bytes:
        return read_secret(file=pin, env=None, environ={}, what="token PIN", settings="X")

    with pytest.raises(ConfigError, match="chmod 600") as refused:
        read()
    assert "123456" not in str(refused.value)
    pin.chmod(0o600)
    assert read() == b"123456"
