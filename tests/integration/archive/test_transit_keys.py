"""KEKs in a real OpenBao transit engine: batching, rotation, outage, migration from local keys."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive.core.errors import (
    EnvelopeIntegrityError,
    KeyProviderUnavailableError,
)
from archive.core.settings import SealSettings
from archive.seal import (
    KEKS_FILE,
    PSEUDONYM_FILE,
    LocalKeyring,
    ObjectIdentity,
    TransitKeyring,
    init_keys,
    open_keys,
    read_header,
    seal,
    unseal,
)
from archive.store import S3ObjectStore, deposit, record_key
from infra.cli import cli
from infra.settings import AppSettings
from tests.support.openbao import BaoServer

SEAL = SealSettings()


def _identity(n: int = 0) -> ObjectIdentity:
    return ObjectIdentity("bucket", f"records/{n:05d}", f"ENC-{n}")


def _transit(settings: AppSettings) -> TransitKeyring:
    """A fresh process's view of the configured transit keyring."""
    keys = open_keys(settings)
    assert isinstance(keys, TransitKeyring)
    return keys


def test_a_night_of_objects_costs_one_round_trip_per_batch_not_per_object(
    bao: BaoServer, tmp_path: Path
) -> None:
    settings = bao.app_settings(tmp_path, batch_key_objects=100)
    init_keys(settings)
    writer = _transit(settings)
    docs = [b"doc %d" % n for n in range(300)]
    sealed = [
        seal(d, identity=_identity(n), keys=writer, settings=SEAL) for n, d in enumerate(docs)
    ]
    assert writer.round_trips == 3
    # Every object still has its own data key: no two wrapped keys or salts are alike.
    headers = [read_header(blob) for blob in sealed]
    assert len({h.wrapped_key for h in headers}) == 300
    assert {h.kek.kek_id for h in headers} == {f"transit:{settings.keys.transit_key}"}

    reader = _transit(settings)
    for n, blob in enumerate(sealed):
        assert unseal(blob, identity=_identity(n), keys=reader, settings=SEAL) == docs[n]
    assert reader.round_trips == 3


def test_a_running_process_follows_a_rotation_and_still_opens_older_versions(
    bao: BaoServer, tmp_path: Path
) -> None:
    settings = bao.app_settings(tmp_path, batch_key_ttl_s=1.0)
    init_keys(settings)
    portal = _transit(settings)  # the long-running process
    before = seal(b"before", identity=_identity(1), keys=portal, settings=SEAL)

    rotated = CliRunner().invoke(cli, ["keys", "rotate"], env=_env(settings))
    assert rotated.exit_code == 0, rotated.output
    assert "v2" in rotated.output
    time.sleep(1.1)  # the batch key's lifetime: no restart, no signal

    after = seal(b"after", identity=_identity(2), keys=portal, settings=SEAL)
    assert read_header(before).kek.version == 1
    assert read_header(after).kek.version == 2
    elsewhere = seal(b"other", identity=_identity(3), keys=_transit(settings), settings=SEAL)
    for n, blob, text in ((1, before, b"before"), (2, after, b"after"), (3, elsewhere, b"other")):
        assert unseal(blob, identity=_identity(n), keys=portal, settings=SEAL) == text
    status = CliRunner().invoke(cli, ["keys", "status"], env=_env(settings))
    assert status.exit_code == 0
    assert "v2" in status.output


def test_a_header_pointing_at_another_version_or_a_foreign_batch_key_does_not_open(
    bao: BaoServer, tmp_path: Path
) -> None:
    settings = bao.app_settings(tmp_path, batch_key_objects=1)
    init_keys(settings)
    keys = _transit(settings)
    keys.rotate()
    one = seal(b"one", identity=_identity(1), keys=keys, settings=SEAL)
    two = seal(b"two", identity=_identity(2), keys=keys, settings=SEAL)
    h1, h2 = read_header(one), read_header(two)
    assert h1.wrapped_key[:60] != h2.wrapped_key[:60]  # batch_key_objects=1: two batch keys
    # The header's version bytes (offset 18) claim v1 while the ciphertext says v2.
    relabelled = one[:18] + (1).to_bytes(4, "big") + one[22:]
    with pytest.raises(EnvelopeIntegrityError, match="another version"):
        unseal(relabelled, identity=_identity(1), keys=_transit(settings), settings=SEAL)
    # Object one's header carrying object two's transit ciphertext: the commitment refuses.
    ct_len = 3 + int.from_bytes(h2.wrapped_key[1:3], "big")
    swapped = one.replace(h1.wrapped_key[:ct_len], h2.wrapped_key[:ct_len])
    with pytest.raises(EnvelopeIntegrityError):
        unseal(swapped, identity=_identity(1), keys=_transit(settings), settings=SEAL)


def test_openbao_down_mid_run_fails_the_record_retryable_and_stores_nothing(
    bao: BaoServer, stack_settings: AppSettings, tmp_path: Path, retain_until: datetime
) -> None:
    settings = bao.app_settings(tmp_path, batch_key_objects=1)
    init_keys(settings)
    keys = _transit(settings)
    store = S3ObjectStore.from_settings(stack_settings)
    stored = deposit(
        b"first record",
        identity=_stored_identity(store, keys, "ENC-1"),
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=SEAL,
    )
    assert stored.created
    bao.stop()
    try:
        second = _stored_identity(store, keys, "ENC-2")
        with pytest.raises(KeyProviderUnavailableError, match="start or unseal it"):
            deposit(
                b"second record",
                identity=second,
                retain_until=retain_until,
                store=store,
                keys=keys,
                settings=SEAL,
            )
        assert store.latest(second.key) is None  # nothing sealed under another key, no plaintext
        with pytest.raises(KeyProviderUnavailableError):
            open_keys(settings)  # a new process cannot even read its pseudonym secret
    finally:
        bao.restart()
    # Back up: the retry succeeds.
    again = deposit(
        b"second record",
        identity=second,
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=SEAL,
    )
    assert again.created


def _stored_identity(store: S3ObjectStore, keys: TransitKeyring, record_id: str) -> ObjectIdentity:
    unique = f"{record_id}-{secrets.token_hex(4)}"
    return ObjectIdentity(
        store.bucket, record_key(facility="01001", token=keys.record_token(unique)), unique
    )


def test_an_archive_sealed_under_the_local_keyring_opens_after_switching_to_transit(
    bao: BaoServer, tmp_path: Path
) -> None:
    local_settings = bao.app_settings(tmp_path).model_copy(
        update={"keys": bao.keys_settings(tmp_path).model_copy(update={"provider": "local"})}
    )
    keyring_dir = local_settings.keyring_dir
    local = LocalKeyring.create(keyring_dir, kek_id="emr-archive-kek")
    old_v1 = seal(b"sealed in 2026", identity=_identity(1), keys=local, settings=SEAL)
    local.rotate()
    old_v2 = seal(b"sealed in 2027", identity=_identity(2), keys=local, settings=SEAL)
    pseudonym = local.pseudonym("079123456789")
    plaintext_keys = [*local.kek_versions().values(), local.pseudonym_secret]

    # Without importing the local keyring, a transit keyring cannot open them (the attack the
    # import answers: switching providers must not orphan the archive).
    bare = bao.app_settings(tmp_path / "bare")
    init_keys(bare)
    with pytest.raises(EnvelopeIntegrityError, match="does not hold"):
        unseal(old_v1, identity=_identity(1), keys=_transit(bare), settings=SEAL)

    transit_settings = local_settings.model_copy(
        update={"keys": local_settings.keys.model_copy(update={"provider": "transit"})}
    )
    result = CliRunner().invoke(cli, ["keys", "init"], env=_env(transit_settings))
    assert result.exit_code == 0, result.output
    assert "local keyring imported" in result.output
    # The hospital moves the plaintext key files to its offline backup.
    (keyring_dir / KEKS_FILE).unlink()
    (keyring_dir / PSEUDONYM_FILE).unlink()

    keys = _transit(transit_settings)
    assert unseal(old_v1, identity=_identity(1), keys=keys, settings=SEAL) == b"sealed in 2026"
    assert unseal(old_v2, identity=_identity(2), keys=keys, settings=SEAL) == b"sealed in 2027"
    assert keys.pseudonym("079123456789") == pseudonym
    new = seal(b"sealed in 2028", identity=_identity(3), keys=keys, settings=SEAL)
    assert read_header(new).kek.kek_id.startswith("transit:")
    stored = (keyring_dir / "transit.json").read_bytes()
    assert not any(base64.b64encode(k) in stored or k in stored for k in plaintext_keys)


def _env(settings: AppSettings) -> dict[str, str]:
    keys = settings.keys
    return {
        "EMR_ARCHIVE_DATA_DIR": str(settings.data_dir),
        "EMR_ARCHIVE_KEYS__PROVIDER": keys.provider,
        "EMR_ARCHIVE_KEYS__TRANSIT_URL": str(keys.transit_url),
        "EMR_ARCHIVE_KEYS__TRANSIT_KEY": keys.transit_key,
        "EMR_ARCHIVE_KEYS__TRANSIT_TOKEN_FILE": str(keys.transit_token_file),
        "EMR_ARCHIVE_KEYS__KEYRING_DIR": str(settings.keyring_dir),
        "EMR_ARCHIVE_KEYS__BATCH_KEY_TTL_S": str(keys.batch_key_ttl_s),
    }
