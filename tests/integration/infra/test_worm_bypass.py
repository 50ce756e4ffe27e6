"""Object Lock must hold below S3: a local user who reaches SeaweedFS's other ports (master,
volume, filer, their gRPC sides) must not be able to remove a COMPLIANCE-locked version.

Each test locks a record in a bucket of its own on a SeaweedFS of this module's own (some attacks,
when they work, wipe a whole collection), attacks it the way a local user without the stack's
keys could, and then reads the locked version back byte for byte through S3.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from archive.store import DevCredentials, S3ObjectStore
from infra import seaweed
from infra.ports import throwaway_settings
from infra.settings import AppSettings as Settings

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Locked:
    settings: Settings
    store: S3ObjectStore
    key: str
    version_id: str
    data: bytes

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def filer_path(self) -> str:
        # Where SeaweedFS's filer keeps an S3 version of a versioned bucket's object.
        return f"/buckets/{self.bucket}/{self.key}.versions/v_{self.version_id}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = throwaway_settings(tmp_path_factory.mktemp("worm-bypass"))
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    seaweed.start(settings)
    try:
        yield settings
    finally:
        seaweed.stop(settings)


@pytest.fixture
def locked(stack: Settings) -> Locked:
    bucket = f"bypass-{secrets.token_hex(4)}"
    settings = stack.model_copy(update={"s3": stack.s3.model_copy(update={"bucket": bucket})})
    store = S3ObjectStore.from_settings(settings)
    store.create_locked_bucket()
    data = secrets.token_bytes(4096)
    key = f"records/v1/bypass/{secrets.token_hex(8)}.pdf"
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    put = store.put_locked(key, data, retain_until=until)
    return Locked(settings, store, key, put.version_id, data)


def _assert_intact(rec: Locked) -> None:
    assert rec.store.get(rec.key, version_id=rec.version_id) == rec.data
    head = rec.store.head(rec.key, version_id=rec.version_id)
    assert head.lock.mode == "COMPLIANCE"


def _attacker_shell(rec: Locked, script: str, home: Path) -> str:
    """``weed shell`` as a local user: same binary, no security.toml, no WEED_* variables."""
    ports = seaweed.SeaweedPorts.from_settings(rec.settings)
    argv = [
        seaweed.weed_binary(),
        "shell",
        f"-master=127.0.0.1:{ports.master}",
        f"-filer=127.0.0.1:{ports.filer}",
    ]
    home.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            argv,
            input=script + "\nexit\n",
            capture_output=True,
            text=True,
            timeout=10,  # before the fix every command here ran in about a second
            cwd=home,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "<timed out>"  # a shell that cannot connect retries until killed
    return done.stdout + done.stderr


def _http(method: str, url: str, body: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0  # nothing answering is as good as a refusal


def _needle_fids(rec: Locked) -> list[str]:
    """The volume needles of the locked version, as an insider with the stack's certificates
    finds them: the attack below then shows knowing them is not enough."""
    out = seaweed.shell(rec.settings, f"fs.meta.cat {rec.filer_path}")
    fids = re.findall(r'"fileId":\s*"([^"]+)"', out)
    assert fids, "the operator's shell should see the version's chunks"
    return fids


def test_weed_shell_without_the_stack_certificates_cannot_remove_locked_records(
    locked: Locked, tmp_path: Path
) -> None:
    b = locked.bucket
    script = "\n".join(
        [
            f"fs.rm -r /buckets/{b}/records",
            f"fs.rm {locked.filer_path}",
            f"s3.bucket.delete -name {b}",
            "lock",
            f"collection.delete -collection {b} -force",
            "unlock",
        ]
    )
    _attacker_shell(locked, script, tmp_path / "home")
    _assert_intact(locked)


def test_filer_http_cannot_delete_or_overwrite_locked_records(locked: Locked) -> None:
    filer = f"http://127.0.0.1:{locked.settings.stack.filer_port}"
    assert _http("DELETE", filer + locked.filer_path) != 204
    assert _http("DELETE", f"{filer}/buckets/{locked.bucket}/records?recursive=true") != 204
    assert _http("PUT", filer + locked.filer_path, b"forged") not in {200, 201}
    _assert_intact(locked)


def test_master_http_cannot_delete_the_bucket_collection(locked: Locked) -> None:
    master = f"http://127.0.0.1:{locked.settings.stack.master_port}"
    _http("GET", f"{master}/col/delete?collection={locked.bucket}")
    _assert_intact(locked)


def test_volume_http_cannot_delete_a_needle_even_knowing_its_fid(locked: Locked) -> None:
    volume = f"http://127.0.0.1:{locked.settings.stack.volume_port}"
    for fid in _needle_fids(locked):
        assert _http("DELETE", f"{volume}/{fid}") not in {200, 202, 204}
        assert _http("PUT", f"{volume}/{fid}", b"forged") not in {200, 201}
    _assert_intact(locked)


def _s3(rec: Locked, *, access: str | None, secret: str | None) -> object:
    config = Config(region_name=rec.settings.s3.region, signature_version=UNSIGNED)
    if access is None:
        return boto3.client("s3", endpoint_url=rec.settings.s3_endpoint_url, config=config)
    return boto3.client(
        "s3",
        endpoint_url=rec.settings.s3_endpoint_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(region_name=rec.settings.s3.region),
    )


@pytest.mark.parametrize("who", ["anonymous", "unknown key", "wrong secret"])
def test_s3_without_valid_credentials_cannot_delete_locked_records(
    locked: Locked, who: str
) -> None:
    real = DevCredentials.load(locked.settings.seaweedfs_dir).admin
    access, secret = {
        "anonymous": (None, None),
        "unknown key": ("EMRNOSUCHKEY0000", "x" * 40),
        "wrong secret": (real.access_key_id, "x" * 40),
    }[who]
    client = _s3(locked, access=access, secret=secret)
    attacks: list[Callable[[], object]] = [
        lambda: client.delete_object(  # type: ignore[attr-defined]
            Bucket=locked.bucket, Key=locked.key, VersionId=locked.version_id
        ),
        lambda: client.put_object(Bucket=locked.bucket, Key=locked.key, Body=b"forged"),  # type: ignore[attr-defined]
        lambda: client.delete_bucket(Bucket=locked.bucket),  # type: ignore[attr-defined]
    ]
    for attack in attacks:
        with pytest.raises(ClientError) as info:
            attack()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(list(locked.store.list_versions(locked.key))) == 1
    _assert_intact(locked)


def test_only_the_s3_port_answers_without_credentials(locked: Locked, tmp_path: Path) -> None:
    st = locked.settings.stack
    assert _http("GET", f"http://127.0.0.1:{st.filer_port}{locked.filer_path}") != 200
    assert _http("GET", f"http://127.0.0.1:{st.filer_port}/buckets/?pretty=y") != 200
    for fid in _needle_fids(locked):
        assert _http("GET", f"http://127.0.0.1:{st.volume_port}/{fid}") != 200
    assert _http("GET", f"http://127.0.0.1:{st.master_port}/dir/lookup?volumeId=1") != 200
    script = f"fs.ls /buckets/{locked.bucket}/records/v1\nfs.meta.cat {locked.filer_path}"
    out = _attacker_shell(locked, script, tmp_path / "home")
    assert "bypass" not in out, "an unauthenticated shell listed the bucket"
    assert "fileId" not in out, "an unauthenticated shell read the version's metadata"
