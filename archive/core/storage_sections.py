"""The storage sections: ``[s3]`` (the primary site) and ``[replica]`` (the second site), the
same shape so that either can be AWS S3, Ceph RGW or a SeaweedFS."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from archive.core.section_base import Section


class S3Settings(Section):
    """Where records are stored. Leave ``endpoint_url`` unset to use the embedded SeaweedFS."""

    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint, e.g. https://s3.ap-southeast-1.amazonaws.com; unset = embedded",
    )
    region: str = Field(default="us-east-1", description="S3 region (any value for SeaweedFS)")
    bucket: str = Field(
        default="emr-archive",
        min_length=3,
        max_length=63,
        description="bucket with Object Lock + versioning (refused otherwise)",
    )
    access_key_id: str | None = Field(
        default=None, description="unset = the standard AWS chain (AWS_ACCESS_KEY_ID, profile, ...)"
    )
    secret_access_key: SecretStr | None = Field(default=None, description="with access_key_id")
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path", description="path for SeaweedFS/MinIO/Ceph; virtual for AWS"
    )
    max_attempts: int = Field(default=8, ge=1, le=20, description="botocore retries (standard)")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="seconds per attempt")
    read_timeout_s: float = Field(default=60.0, gt=0, description="seconds per attempt")
    max_connections: int = Field(
        default=10,
        ge=1,
        le=256,
        description="connections each client keeps (botocore's pool); verification raises it "
        "to its threads",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class ReplicaSettings(S3Settings):
    """The second site: the same shape as ``[s3]`` at another provider (AWS S3, Ceph RGW, a
    SeaweedFS elsewhere). Writes are synchronous: a record is catalogued only once both sites
    have confirmed its locked copy. Leave ``endpoint_url`` unset for a second embedded SeaweedFS."""

    enabled: bool = Field(default=False, description="store every object at both sites")
