"""Settings: one place, clear errors, documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archive.core.errors import ConfigError
from archive.core.settings import CONFIG_FILE_ENV
from archive.store import make_client
from infra.settings import load_app_settings as load_settings
from infra.settings import settings_reference as reference
from tests.support.paths import REPO

README = REPO / "README.md"


def test_defaults_use_the_embedded_stack_under_var() -> None:
    s = load_settings()
    assert s.data_dir == Path("var")
    assert s.uses_embedded_s3
    assert s.uses_dev_pki
    assert s.s3_endpoint_url == f"http://127.0.0.1:{s.stack.s3_port}"
    assert s.keyring_dir == Path("var/keys")


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMR_ARCHIVE_S3__BUCKET", "hospital-records")
    monkeypatch.setenv("EMR_ARCHIVE_S3__ENDPOINT_URL", "https://s3.example.vn")
    monkeypatch.setenv("EMR_ARCHIVE_SEAL__FRAME_SIZE", "65536")
    s = load_settings()
    assert s.s3.bucket == "hospital-records"
    assert not s.uses_embedded_s3
    assert s.seal.frame_size == 65536


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("EMR_ARCHIVE_S3__ENDPOINT_URL", "s3.example.vn", "EMR_ARCHIVE_S3__ENDPOINT_URL"),
        ("EMR_ARCHIVE_SEAL__FRAME_SIZE", "12", "EMR_ARCHIVE_SEAL__FRAME_SIZE"),
        ("EMR_ARCHIVE_STACK__S3_PORT", "http", "EMR_ARCHIVE_STACK__S3_PORT"),
        ("EMR_ARCHIVE_S3__NO_SUCH_THING", "1", "EMR_ARCHIVE_S3__NO_SUCH_THING"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=expected) as info:
        load_settings()
    assert value not in str(info.value).split(":", 1)[-1].split("\n", 1)[0] or value == "1"


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMR_ARCHIVE_S3__MAX_ATTEMPTS", "s3cr3t-value")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "s3cr3t-value" not in str(info.value)
    monkeypatch.delenv("EMR_ARCHIVE_S3__MAX_ATTEMPTS")
    s = load_settings(s3={"secret_access_key": "very-secret"})
    assert "very-secret" not in repr(s)


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "emr.toml"
    config.write_text('data_dir = "/srv/emr"\n[s3]\nbucket = "from-toml"\nregion = "ap-1"\n')
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    monkeypatch.setenv("EMR_ARCHIVE_S3__REGION", "from-env")
    s = load_settings()
    assert s.data_dir == Path("/srv/emr")
    assert (s.s3.bucket, s.s3.region) == ("from-toml", "from-env")


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_FILE_ENV, "/nonexistent/emr.toml")
    with pytest.raises(ConfigError, match="EMR_ARCHIVE_CONFIG"):
        load_settings()


def test_standard_aws_credentials_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    s = load_settings(s3={"endpoint_url": "https://s3.example.vn"})
    creds = make_client(s)._request_signer._credentials  # type: ignore[attr-defined]
    assert creds.access_key == "AKIAFROMENVIRONMENT"


def test_embedded_stack_without_credentials_says_run_stack_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack up"):
        make_client(load_settings(data_dir=tmp_path))


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [env for env, _, _ in reference() if env not in text]
    assert not missing, f"README lacks: {missing}"


def test_every_section_of_the_whole_set_is_known_to_the_write_path() -> None:
    # The write path refuses top-level keys it does not know; it must know every real one.
    from archive.core.settings import ALL_SECTIONS
    from infra.settings import AppSettings

    assert set(AppSettings.model_fields) == ALL_SECTIONS


def test_a_misspelt_top_level_key_is_refused_also_by_a_flow_s_narrower_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archive.core.settings import load_settings as load_write_path
    from verification.settings import VerifySettings

    config = tmp_path / "emr-archive.toml"
    config.write_text('data_dri = "/srv/x"\n[portal]\nport = 15000\n', encoding="utf-8")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    for load in (load_write_path, lambda: load_settings(), lambda: _load(VerifySettings)):
        with pytest.raises(ConfigError, match="data_dri"):
            load()
    config.write_text("[portal]\nport = 15000\n", encoding="utf-8")
    assert load_write_path().data_dir == Path("var")  # a section above the write path: left


def _load(kind: type[Any]) -> Any:
    from archive.core.settings import load

    return load(kind)
