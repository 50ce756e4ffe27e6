"""The whole set of settings, as the command line loads it: every package's section, unknown
keys refused (a typo in ``emr-archive.toml`` is an error here, not silently ignored)."""

from __future__ import annotations

from typing import Any

from pydantic_settings import SettingsConfigDict

from archive.core.settings import ENV_PREFIX, load, reference
from portal.settings import PortalAppSettings


class AppSettings(PortalAppSettings):
    """All of emr-archive's settings: archive, stack, verification and portal sections."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True, extra="forbid"
    )


def load_app_settings(**overrides: Any) -> AppSettings:
    """Every setting, read once for a command of the CLI, the demo or the stack."""
    return load(AppSettings, **overrides)


def settings_reference() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, for the README table."""
    return reference(AppSettings)
