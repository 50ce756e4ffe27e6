"""A real OpenBao server for tests: the embedded stack's own start-up code, once per session.

Each test gets a transit key of its own (rotations do not leak between tests) and a token whose
policy is the archive's (:func:`infra.openbao.write_policy`), limited to that key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac

from archive.core.atomic import write_private
from archive.core.settings import KeySettings
from infra import openbao
from infra.ports import throwaway_settings
from infra.settings import AppSettings


@dataclass(frozen=True)
class BaoServer:
    settings: AppSettings  # the server's own data dir and port

    @classmethod
    def start(cls, data_dir: Path) -> BaoServer:
        settings = throwaway_settings(data_dir, keys=KeySettings(provider="transit"))
        openbao.start(settings)
        return cls(settings)

    def stop(self) -> None:
        openbao.stop(self.settings)

    def restart(self) -> None:
        openbao.start(self.settings)

    @property
    def url(self) -> str:
        return self.settings.transit_url

    def root(self) -> Any:
        return hvac.Client(url=self.url, token=openbao.root_token(self.settings), timeout=30)

    def keys_settings(self, directory: Path, **overrides: Any) -> KeySettings:
        """Transit settings for a key of its own, its token in ``directory`` (0600)."""
        key = f"test-{secrets.token_hex(4)}"
        root = self.root()
        openbao.write_policy(root, key, mount="transit", key=key)
        directory.mkdir(parents=True, exist_ok=True)
        token_file = directory / "bao-token"
        write_private(token_file, openbao.issue_token(root, key))
        fields: dict[str, Any] = {
            "provider": "transit",
            "transit_url": self.url,
            "transit_key": key,
            "transit_token_file": token_file,
            "keyring_dir": directory / "keys",
            **overrides,
        }
        return KeySettings(**fields)

    def app_settings(self, directory: Path, **overrides: Any) -> AppSettings:
        """Whole settings (for ``open_keys``/``init_keys``) with :meth:`keys_settings`."""
        keys = self.keys_settings(directory, **overrides)
        return self.settings.model_copy(update={"data_dir": directory, "keys": keys})
