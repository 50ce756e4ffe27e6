"""Settings, read in exactly one place.

Everything configurable comes from (highest priority first) keyword arguments, environment
variables prefixed ``EMR_ARCHIVE_`` (nested with ``__``, e.g. ``EMR_ARCHIVE_S3__BUCKET``), a TOML
file (``EMR_ARCHIVE_CONFIG`` or ``./emr-archive.toml``), and the defaults below. The result is a
frozen object passed down to the code that needs it; nothing else reads ``os.environ``.

Unset production knobs (S3 endpoint, TSA, signer) mean "use the embedded development stack under
``data_dir``"; once they are set, nothing development-only is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from archive.core.errors import ConfigError
from archive.core.intake_section import IntakeSettings as IntakeSettings
from archive.core.sections import (
    ArchiveSettings as ArchiveSettings,
)
from archive.core.sections import (
    CatalogSettings as CatalogSettings,
)
from archive.core.sections import (
    ClusterSettings as ClusterSettings,
)
from archive.core.sections import (
    EvidenceSettings as EvidenceSettings,
)
from archive.core.sections import (
    KeySettings as KeySettings,
)
from archive.core.sections import (
    ReplicaSettings as ReplicaSettings,
)
from archive.core.sections import (
    S3Settings as S3Settings,
)
from archive.core.sections import (
    SealSettings as SealSettings,
)
from archive.core.sections import (
    Section as Section,
)
from archive.core.sections import (
    SignerSettings as SignerSettings,
)
from archive.core.sections import (
    StackSettings as StackSettings,
)
from archive.core.sections import (
    normalise_fingerprint as normalise_fingerprint,
)

ENV_PREFIX = "EMR_ARCHIVE_"
CONFIG_FILE_ENV = "EMR_ARCHIVE_CONFIG"
DEFAULT_CONFIG_FILE = Path("emr-archive.toml")


# Every top-level key of the settings, including the sections that packages above ``archive``
# declare (verification, portal): names only, so this layer can refuse a misspelt key without
# importing them. infra.settings checks that this list and AppSettings agree.
ALL_SECTIONS: frozenset[str] = frozenset(
    {
        "data_dir",
        "s3",
        "replica",
        "keys",
        "signer",
        "seal",
        "stack",
        "catalog",
        "archive",
        "intake",
        "evidence",
        "cluster",
        "verification",
        "portal",
    }
)


class Settings(BaseSettings):
    """The write path's settings (and the embedded stack's ports its defaults point at).

    Packages above ``archive`` declare their own sections next to their code and extend this
    class with them (``verification.settings``, ``portal.settings``); the command line loads the
    whole set (``infra.settings.AppSettings``), which also refuses unknown keys. Build any of them
    with :func:`load`.
    """

    # Sections declared by packages above this one are left to the classes that declare them (a
    # flow that needs only the write path loads this class from the same file the CLI validates
    # whole); any other top-level key is a typo and refused (_known_keys_only).
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
    )

    data_dir: Path = Field(default=Path("var"), description="generated state; git-ignored")
    s3: S3Settings = S3Settings()
    replica: ReplicaSettings = ReplicaSettings()
    keys: KeySettings = KeySettings()
    signer: SignerSettings = SignerSettings()
    seal: SealSettings = SealSettings()
    stack: StackSettings = StackSettings()
    catalog: CatalogSettings = CatalogSettings()
    archive: ArchiveSettings = ArchiveSettings()
    intake: IntakeSettings = IntakeSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    cluster: ClusterSettings = ClusterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in ALL_SECTIONS)
            if unknown:
                raise ValueError(
                    f"unknown setting(s) {', '.join(unknown)}: the known ones are "
                    f"{', '.join(sorted(ALL_SECTIONS))}"
                )
        return data

    # Derived locations: one definition each, so nobody rebuilds paths by hand.
    @property
    def keyring_dir(self) -> Path:
        return self.keys.keyring_dir or self.data_dir / "keys"

    @property
    def catalog_dir(self) -> Path:
        return self.catalog.catalog_dir or self.data_dir / "catalog"

    @property
    def audit_dir(self) -> Path:
        """Local copy of the audit log (the locked bucket segments are the authority)."""
        return self.catalog_dir.with_name("audit")

    @property
    def retention_dir(self) -> Path:
        """Local copy of the retention register (holds, lock changes, dispositions)."""
        return self.catalog_dir.with_name("retention")

    @property
    def exports_dir(self) -> Path:
        """Synthetic exports (demo, benchmarks): a default source root, in the 0700 data dir."""
        return self.data_dir / "exports"

    @property
    def stack_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def seaweedfs_dir(self) -> Path:
        return self.data_dir / "seaweedfs"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def openbao_dir(self) -> Path:
        return self.data_dir / "openbao"

    @property
    def uses_embedded_openbao(self) -> bool:
        return self.keys.provider == "transit" and self.keys.transit_url is None

    @property
    def transit_url(self) -> str:
        return self.keys.transit_url or f"http://127.0.0.1:{self.stack.openbao_port}"

    @property
    def transit_token_file(self) -> Path:
        return self.keys.transit_token_file or self.openbao_dir / "archive-token"

    @property
    def uses_embedded_s3(self) -> bool:
        return self.s3.endpoint_url is None

    @property
    def s3_endpoint_url(self) -> str:
        return self.s3.endpoint_url or f"http://127.0.0.1:{self.stack.s3_port}"

    @property
    def replica_dir(self) -> Path:
        return self.data_dir / "seaweedfs-replica"

    @property
    def uses_embedded_replica(self) -> bool:
        return self.replica.enabled and self.replica.endpoint_url is None

    @property
    def replica_endpoint_url(self) -> str:
        port = self.stack.s3_port + self.stack.replica_port_offset
        return self.replica.endpoint_url or f"http://127.0.0.1:{port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.stack.prefect_port}/api"

    @property
    def uses_dev_pki(self) -> bool:
        return (
            self.signer.pkcs12_path is None
            and self.signer.csc_service_url is None
            and (self.signer.pkcs11_module is None or self.signer.dev_token)
        )

    @property
    def tsa_url(self) -> str:
        return self.signer.tsa_url or f"http://127.0.0.1:{self.stack.pki_port}/emr-dev/tsa/tsa"

    @property
    def dev_archive_tsa_url(self) -> str:
        """The development PKI's second TSA (``tsa-2``, valid decades longer than the first):
        what evidence-record renewals use in development (infra.pki.DevPki.archive_tsa_url)."""
        return f"http://127.0.0.1:{self.stack.pki_port}/emr-dev/tsa/tsa-2"


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_FILE_ENV}={explicit!s} does not name a readable file: "
                "point it at a TOML settings file or unset it"
            )
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


S = TypeVar("S", bound=Settings)


def load(kind: type[S], **overrides: Any) -> S:
    """Read settings of ``kind`` once: the one place that reads the environment and the TOML
    file. A bad value becomes a :class:`ConfigError` naming the variable."""
    try:
        return kind(**overrides)
    except ValidationError as e:
        raise ConfigError(_explain(e)) from None


def load_settings(**overrides: Any) -> Settings:
    """The write path's settings (see :func:`load` for the settings of other packages)."""
    return load(Settings, **overrides)


def _explain(error: ValidationError) -> str:
    lines = ["invalid settings:"]
    for item in error.errors():
        path = [str(p) for p in item["loc"]]
        env_name = ENV_PREFIX + "__".join(p.upper() for p in path)
        # The input value is left out on purpose: it may be a secret.
        lines.append(f"  {env_name} ({'.'.join(path)}): {item['msg']}")
    lines.append("Fix the environment variable or the TOML file, or unset it to use the default.")
    return "\n".join(lines)


def reference(kind: type[BaseModel]) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for docs and `settings`."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], path: list[str]) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, [*path, name])
                continue
            env = ENV_PREFIX + "__".join(p.upper() for p in [*path, name])
            default = field.default
            shown = "(unset)" if default is None else str(default)
            if isinstance(default, tuple):
                shown = ",".join(str(d) for d in default) or "(empty)"
            rows.append((env, shown, field.description or ""))

    walk(kind, [])
    return rows
