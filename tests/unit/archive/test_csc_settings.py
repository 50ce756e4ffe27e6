"""Remote signing settings (CSC API): all or nothing, no token over plain HTTP to another host,
the access token read from a private file or a variable and never carried in the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.core.errors import ConfigError
from archive.sign.config import CscConfig, SignerConfig
from archive.sign.csc import _read_token
from infra.settings import load_app_settings as load_settings

TOKEN = "tok-3b1f9c"


def _remote(tmp_path: Path, **changes: object) -> dict[str, object]:
    token = tmp_path / "csc.token"
    token.touch(mode=0o600)
    token.write_text(TOKEN + "\n")
    signer: dict[str, object] = {
        "csc_service_url": "https://csc.example.vn/",
        "csc_credential_id": "hospital-1",
        "csc_token_file": token,
        "tsa_url": "https://tsa.example.vn",
        "trust_roots": [tmp_path / "root.pem"],
        "tsa_trust_roots": [tmp_path / "root.pem"],
    }
    signer.update(changes)
    return signer


def test_a_complete_csc_signer_is_a_production_signer(tmp_path: Path) -> None:
    settings = load_settings(signer=_remote(tmp_path))
    assert not settings.uses_dev_pki
    config = SignerConfig.from_settings(settings)
    assert config.pkcs12_path is None
    assert config.csc == CscConfig(
        service_url="https://csc.example.vn",
        credential_id="hospital-1",
        token_file=tmp_path / "csc.token",
        batch_size=50,
    )
    assert TOKEN not in repr(config)
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"csc_credential_id": None}, "CSC_CREDENTIAL_ID"),
        ({"csc_token_file": None}, "CSC_TOKEN_FILE or CSC_TOKEN_ENV"),
        ({"tsa_url": None}, "TSA_URL"),
        ({"pkcs12_path": "/etc/hospital.p12"}, "not several"),
        ({"csc_service_url": "http://csc.example.vn"}, "https://"),
    ],
)
def test_half_or_unsafe_csc_settings_are_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(signer=_remote(tmp_path, **changes))


def test_plain_http_is_accepted_on_loopback_only(tmp_path: Path) -> None:
    settings = load_settings(signer=_remote(tmp_path, csc_service_url="http://127.0.0.1:8080"))
    assert settings.signer.csc_service_url == "http://127.0.0.1:8080"


def test_the_token_file_must_be_private(tmp_path: Path) -> None:
    config = SignerConfig.from_settings(load_settings(signer=_remote(tmp_path))).csc
    assert config is not None
    assert _read_token(config, {}) == TOKEN
    (tmp_path / "csc.token").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        _read_token(config, {})


def test_the_token_variable_must_be_set(tmp_path: Path) -> None:
    config = CscConfig(service_url="https://csc.example.vn", credential_id="c", token_env="CSC_T")
    assert _read_token(config, {"CSC_T": TOKEN}) == TOKEN
    with pytest.raises(ConfigError, match="CSC_T is not set") as info:
        _read_token(config, {})
    assert TOKEN not in str(info.value)
