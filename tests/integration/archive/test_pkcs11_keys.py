"""KEKs on a real SoftHSM2 token: wrapped on the token, byte-identical to the local keyring,
never extractable, migration from local keys, rotation seen live, a token pulled mid-run."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import keywrap
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11

from archive.core.errors import (
    EnvelopeIntegrityError,
    KeyProviderUnavailableError,
    KeyringError,
    UnknownKeyError,
)
from archive.core.settings import SealSettings
from archive.seal import (
    KEKS_FILE,
    PSEUDONYM_FILE,
    LocalKeyring,
    ObjectIdentity,
    WrappedKey,
    init_keys,
    open_keys,
    read_header,
    seal,
    unseal,
)
from archive.seal.hsm import Pkcs11Keyring
from archive.store import S3ObjectStore, deposit, record_key
from infra.cli import cli
from infra.settings import AppSettings
from tests.support.hsm_keys import (
    close_all_sessions,
    env_of,
    fresh_token,
    pkcs11_settings,
    side_session,
)
from tests.support.softhsm import SoftToken, token_dir

SEAL = SealSettings()


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftToken:
    return fresh_token(tmp_path_factory)


def _identity(n: int = 0) -> ObjectIdentity:
    return ObjectIdentity("bucket", f"records/{n:05d}", f"ENC-{n}")


def _hsm(settings: AppSettings) -> Pkcs11Keyring:
    keys = open_keys(settings)
    assert isinstance(keys, Pkcs11Keyring)
    return keys


def _init(settings: AppSettings) -> str:
    result = CliRunner().invoke(cli, ["keys", "init"], env=env_of(settings))
    assert result.exit_code == 0, result.output
    return result.output


def test_data_keys_are_wrapped_on_the_token_exactly_as_the_local_keyring_wraps_them(
    stack_settings: AppSettings, token: SoftToken, tmp_path: Path
) -> None:
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    local = LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)
    kek = local.kek_versions()[1]
    assert "local keyring imported" in _init(settings)
    hsm = _hsm(settings)

    data_key = os.urandom(32)
    on_token = hsm.wrap(data_key)
    assert on_token.kek == local.current()
    assert on_token.wrapped == keywrap.aes_key_wrap(kek, data_key) == local.wrap(data_key).wrapped
    # Objects cross both ways: the header says nothing of where the KEK lives.
    by_token = seal(b"sealed by the HSM", identity=_identity(1), keys=hsm, settings=SEAL)
    by_file = seal(b"sealed by the file", identity=_identity(2), keys=local, settings=SEAL)
    assert unseal(by_token, identity=_identity(1), keys=local, settings=SEAL).endswith(b"HSM")
    assert unseal(by_file, identity=_identity(2), keys=hsm, settings=SEAL).endswith(b"file")


def test_the_store_pool_seals_and_opens_on_one_token_at_once_without_crashing_it(
    stack_settings: AppSettings, token: SoftToken, tmp_path: Path
) -> None:
    # python-pkcs11 initialises the module without locking (C_Initialize(NULL)), so SoftHSM2
    # guards nothing: two token calls at once crash the process. The keyring serialises them.
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    init_keys(settings)
    keys = _hsm(settings)

    def round_trip(n: int) -> bytes:
        blob = seal(b"%d" % n, identity=_identity(n), keys=keys, settings=SEAL)
        keys.pseudonym(f"0791{n:08d}")
        return unseal(blob, identity=_identity(n), keys=keys, settings=SEAL)

    with ThreadPoolExecutor(8) as pool:  # the nightly worker's store pool
        opened = list(pool.map(round_trip, range(400)))
    assert opened == [b"%d" % n for n in range(400)]


def test_no_kek_can_be_read_or_exported_from_the_token_and_a_planted_one_is_refused(
    stack_settings: AppSettings, token: SoftToken, tmp_path: Path
) -> None:
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    init_keys(settings)  # v1 generated on the token
    _hsm(settings).rotate()  # v2 too
    prefix = settings.keys.pkcs11_label_prefix + settings.keys.kek_id
    session = side_session(token)
    keys = [
        k
        for k in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
        if k[Attribute.LABEL].startswith(prefix)
    ]
    assert sorted(k[Attribute.LABEL] for k in keys) == [
        f"{prefix}.hmac",
        f"{prefix}.v1",
        f"{prefix}.v2",
    ]
    probe: Any = session.generate_key(KeyType.AES, 256, template={Attribute.EXTRACTABLE: True})
    for key in keys:
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]
        with pytest.raises(p11.KeyUnextractable):
            probe.wrap_key(key)
    # Someone puts an extractable key under the next version's label: never used.
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: os.urandom(32),
            Attribute.LABEL: f"{prefix}.v3",
            Attribute.TOKEN: True,
            Attribute.EXTRACTABLE: True,
            Attribute.SENSITIVE: False,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
        }
    )
    with pytest.raises(KeyringError, match="extractable"):
        _hsm(settings).wrap(os.urandom(32))


def test_an_archive_sealed_under_the_local_keyring_opens_after_switching_to_pkcs11(
    stack_settings: AppSettings, token: SoftToken, tmp_path: Path
) -> None:
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    local = LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)
    old_v1 = seal(b"sealed in 2026", identity=_identity(1), keys=local, settings=SEAL)
    local.rotate()
    old_v2 = seal(b"sealed in 2027", identity=_identity(2), keys=local, settings=SEAL)
    ids = ("079123456789", "ENC-42", 12)

    # Without the import, the token's own keys cannot open them (the attack the import answers).
    bare = pkcs11_settings(stack_settings, token, tmp_path / "bare")
    init_keys(bare)
    with pytest.raises((EnvelopeIntegrityError, UnknownKeyError)):
        unseal(old_v1, identity=_identity(1), keys=_hsm(bare), settings=SEAL)
    assert _hsm(bare).pseudonym(ids[0]) != local.pseudonym(ids[0])

    assert "local keyring imported (pseudonym secret, v1, v2)" in _init(settings)
    assert "ready" in _init(settings)  # again: nothing to do, every key proven equal
    (settings.keyring_dir / KEKS_FILE).unlink()  # to the offline backup
    (settings.keyring_dir / PSEUDONYM_FILE).unlink()

    hsm = _hsm(settings)
    assert unseal(old_v1, identity=_identity(1), keys=hsm, settings=SEAL) == b"sealed in 2026"
    assert unseal(old_v2, identity=_identity(2), keys=hsm, settings=SEAL) == b"sealed in 2027"
    # The HMAC on the token is the local one: pseudonyms, tokens, digests, chain key unchanged.
    assert hsm.pseudonym(ids[0]) == local.pseudonym(ids[0])
    assert hsm.record_token(ids[1]) == local.record_token(ids[1])
    assert hsm.quarantine_digest(ids[2]) == local.quarantine_digest(ids[2])
    assert hsm.chain_key() == local.chain_key()
    new = seal(b"sealed in 2028", identity=_identity(3), keys=hsm, settings=SEAL)
    assert read_header(new).kek == local.current()

    # Another archive's keyring in keyring_dir is refused, not merged.
    LocalKeyring.create(settings.keyring_dir, kek_id=settings.keys.kek_id)
    result = CliRunner().invoke(cli, ["keys", "init"], env=env_of(settings))
    assert result.exit_code != 0
    assert "another archive" in result.output


def test_a_running_process_follows_a_rotation_and_an_altered_key_is_not_retryable(
    stack_settings: AppSettings, token: SoftToken, tmp_path: Path
) -> None:
    settings = pkcs11_settings(stack_settings, token, tmp_path, pkcs11_refresh_s=0.5)
    _init(settings)
    portal = _hsm(settings)  # the long-running process
    before = seal(b"before", identity=_identity(1), keys=portal, settings=SEAL)

    rotated = CliRunner().invoke(cli, ["keys", "rotate"], env=env_of(settings))
    assert rotated.exit_code == 0, rotated.output
    assert "v2" in rotated.output
    time.sleep(0.6)  # pkcs11_refresh_s: no restart, no signal
    after = seal(b"after", identity=_identity(2), keys=portal, settings=SEAL)
    assert (read_header(before).kek.version, read_header(after).kek.version) == (1, 2)
    for n, blob, text in ((1, before, b"before"), (2, after, b"after")):
        assert unseal(blob, identity=_identity(n), keys=portal, settings=SEAL) == text
    status = CliRunner().invoke(cli, ["keys", "status"], env=env_of(settings))
    assert status.exit_code == 0
    assert "versions 1, 2" in status.output

    # A flipped bit in the wrapped key: the token answers an error, but the record is bad, not
    # the token; retrying would never help.
    header = read_header(after)
    altered = bytearray(header.wrapped_key)
    altered[7] ^= 1
    with pytest.raises(EnvelopeIntegrityError) as caught:
        portal.unwrap(WrappedKey(header.kek, bytes(altered)))
    assert not isinstance(caught.value, KeyProviderUnavailableError)
    with pytest.raises(UnknownKeyError):
        portal.unwrap(WrappedKey(type(header.kek)(header.kek.kek_id, 9), header.wrapped_key))


def test_a_closed_session_is_reopened_without_failing_the_record(
    stack_settings: AppSettings, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    token = fresh_token(tmp_path_factory)
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    init_keys(settings)
    keys = _hsm(settings)
    first = seal(b"one", identity=_identity(1), keys=keys, settings=SEAL)
    pseudonym = keys.pseudonym("079123456789")
    close_all_sessions(token)
    assert unseal(first, identity=_identity(1), keys=keys, settings=SEAL) == b"one"
    assert keys.pseudonym("079123456789") == pseudonym


# python-pkcs11 ends a search on the dead session in a finaliser, which complains (harmlessly).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_token_pulled_mid_run_fails_the_record_retryable_and_stores_nothing(
    stack_settings: AppSettings,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    retain_until: datetime,
) -> None:
    token = fresh_token(tmp_path_factory)
    settings = pkcs11_settings(stack_settings, token, tmp_path)
    init_keys(settings)
    keys = _hsm(settings)
    store = S3ObjectStore.from_settings(stack_settings)

    first = deposit(
        b"record ENC-1",
        identity=_stored_identity(store, keys, "ENC-1"),
        retain_until=retain_until,
        store=store,
        keys=keys,
        settings=SEAL,
    )
    assert first.created
    second = _stored_identity(store, keys, "ENC-2")
    directory = token_dir(token)
    shutil.rmtree(directory)  # SoftHSM2's way of pulling the token out
    with pytest.raises(KeyProviderUnavailableError, match="insert the token"):
        deposit(
            b"record ENC-2",
            identity=second,
            retain_until=retain_until,
            store=store,
            keys=keys,
            settings=SEAL,
        )
    assert store.latest(second.key) is None  # nothing under another key, nothing in clear
    with pytest.raises(KeyProviderUnavailableError):
        keys.pseudonym("079123456789")  # no pseudonym from anywhere else either
    with pytest.raises(KeyProviderUnavailableError):
        open_keys(settings).current()  # a new keyring of the process: same token, same answer


def _stored_identity(store: S3ObjectStore, keys: Pkcs11Keyring, record_id: str) -> ObjectIdentity:
    unique = f"{record_id}-{secrets.token_hex(4)}"
    return ObjectIdentity(
        store.bucket, record_key(facility="01001", token=keys.record_token(unique)), unique
    )
