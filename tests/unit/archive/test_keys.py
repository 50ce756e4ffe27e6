"""LocalKeyring: private files, rotation, wrapping, pseudonyms. Real crypto, real files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import unicodedata
from pathlib import Path

import pytest

from archive.core.errors import EnvelopeIntegrityError, KeyringError, UnknownKeyError
from archive.seal import KEKS_FILE, PSEUDONYM_FILE, KekRef, LocalKeyring, WrappedKey

KEK_ID = "test-kek"
PATIENT = "Nguyễn Thị Hồng|079123456789"  # a Vietnamese name and a CCCD-like number


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "keys"


@pytest.fixture
def ring(keydir: Path) -> LocalKeyring:
    return LocalKeyring.create(keydir, kek_id=KEK_ID)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- files and permissions ------------------------------------------------------------------------


def test_create_makes_private_dir_and_files(ring: LocalKeyring, keydir: Path) -> None:
    assert _mode(keydir) == 0o700
    assert sorted(p.name for p in keydir.iterdir()) == [KEKS_FILE, PSEUDONYM_FILE]  # no temps
    for name in (KEKS_FILE, PSEUDONYM_FILE):
        assert _mode(keydir / name) == 0o600
    assert ring.current() == KekRef(KEK_ID, 1)


def test_create_is_private_even_with_a_permissive_umask(keydir: Path) -> None:
    old = os.umask(0)
    try:
        LocalKeyring.create(keydir, kek_id=KEK_ID)
    finally:
        os.umask(old)
    assert _mode(keydir) == 0o700
    assert _mode(keydir / KEKS_FILE) == 0o600


def test_create_refuses_an_existing_keyring(ring: LocalKeyring, keydir: Path) -> None:
    before = (keydir / KEKS_FILE).read_bytes()
    with pytest.raises(KeyringError, match="already exists"):
        LocalKeyring.create(keydir, kek_id=KEK_ID)
    assert (keydir / KEKS_FILE).read_bytes() == before


def test_create_refuses_an_invalid_kek_id(keydir: Path) -> None:
    with pytest.raises(KeyringError, match="invalid"):
        LocalKeyring.create(keydir, kek_id="bad id/with slash")


def test_open_missing_keyring_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as info:
        LocalKeyring.open(tmp_path / "nowhere")
    assert "emr-archive keys init" in str(info.value)
    assert "emr-archive stack up" in str(info.value)


@pytest.mark.parametrize("name", [KEKS_FILE, PSEUDONYM_FILE])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_open_refuses_files_others_can_access(
    ring: LocalKeyring, keydir: Path, name: str, mode: int
) -> None:
    path = keydir / name
    path.chmod(mode)
    with pytest.raises(KeyringError) as info:
        LocalKeyring.open(keydir)
    assert str(path) in str(info.value)
    assert f"chmod 600 {path}" in str(info.value)


def test_open_missing_pseudonym_secret_says_restore(ring: LocalKeyring, keydir: Path) -> None:
    (keydir / PSEUDONYM_FILE).unlink()
    with pytest.raises(KeyringError, match="restore it from backup"):
        LocalKeyring.open(keydir)


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc.update(format_version=2),
        lambda doc: doc.update(format="something-else"),
        lambda doc: doc.update(current_version=7),
        lambda doc: doc.update(current_version=True),
        lambda doc: doc.update(kek_id="no spaces allowed"),
        lambda doc: doc.update(versions={}),
        lambda doc: doc["versions"].update({"1": "not base64!"}),
        lambda doc: doc["versions"].update({"1": base64.b64encode(b"short").decode()}),
        lambda doc: doc["versions"].update({"x": doc["versions"]["1"]}),
    ],
)
def test_open_refuses_malformed_kek_files(ring: LocalKeyring, keydir: Path, edit: object) -> None:
    path = keydir / KEKS_FILE
    doc = json.loads(path.read_text())
    secret = doc["versions"]["1"]
    edit(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyringError) as info:
        LocalKeyring.open(keydir)
    assert secret not in str(info.value)


def test_open_refuses_a_file_that_is_not_json(ring: LocalKeyring, keydir: Path) -> None:
    (keydir / KEKS_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(KeyringError, match="not valid JSON"):
        LocalKeyring.open(keydir)


def test_open_or_create_creates_once_then_opens(keydir: Path) -> None:
    first = LocalKeyring.open_or_create(keydir, kek_id=KEK_ID)
    second = LocalKeyring.open_or_create(keydir, kek_id=KEK_ID)
    assert first.current() == second.current() == KekRef(KEK_ID, 1)
    assert first.pseudonym(PATIENT) == second.pseudonym(PATIENT)
    data_key = os.urandom(32)
    assert second.unwrap(first.wrap(data_key)) == data_key


def test_open_or_create_refuses_another_kek_id(ring: LocalKeyring, keydir: Path) -> None:
    with pytest.raises(KeyringError, match="KEK_ID"):
        LocalKeyring.open_or_create(keydir, kek_id="other-kek")


# --- wrapping and rotation ------------------------------------------------------------------------


def test_wrap_unwrap_round_trip(ring: LocalKeyring) -> None:
    data_key = os.urandom(32)
    wrapped = ring.wrap(data_key)
    assert wrapped.kek == KekRef(KEK_ID, 1)
    assert data_key not in wrapped.wrapped
    assert ring.unwrap(wrapped) == data_key


def test_wrap_refuses_keys_of_the_wrong_size(ring: LocalKeyring) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ring.wrap(os.urandom(16))


def test_unwrap_with_unknown_version_or_id(ring: LocalKeyring) -> None:
    wrapped = ring.wrap(os.urandom(32))
    with pytest.raises(UnknownKeyError, match="v2"):
        ring.unwrap(WrappedKey(KekRef(KEK_ID, 2), wrapped.wrapped))
    with pytest.raises(UnknownKeyError, match="other"):
        ring.unwrap(WrappedKey(KekRef("other", 1), wrapped.wrapped))


def test_unwrap_under_another_keyring_fails(ring: LocalKeyring, tmp_path: Path) -> None:
    other = LocalKeyring.create(tmp_path / "other", kek_id=KEK_ID)  # same id and version
    with pytest.raises(EnvelopeIntegrityError):
        other.unwrap(ring.wrap(os.urandom(32)))


@pytest.mark.parametrize("position", [0, 7, 8, 39])
def test_unwrap_of_altered_bytes_fails(ring: LocalKeyring, position: int) -> None:
    wrapped = ring.wrap(os.urandom(32))
    altered = bytearray(wrapped.wrapped)
    altered[position] ^= 0x01
    with pytest.raises(EnvelopeIntegrityError):
        ring.unwrap(WrappedKey(wrapped.kek, bytes(altered)))


def test_rotate_changes_current_and_keeps_old_versions(ring: LocalKeyring, keydir: Path) -> None:
    old_key = os.urandom(32)
    old = ring.wrap(old_key)
    assert ring.rotate() == KekRef(KEK_ID, 2)
    assert ring.current() == KekRef(KEK_ID, 2)
    new_key = os.urandom(32)
    new = ring.wrap(new_key)
    assert new.kek == KekRef(KEK_ID, 2)

    reopened = LocalKeyring.open(keydir)  # rotation was persisted
    assert reopened.current() == KekRef(KEK_ID, 2)
    assert reopened.unwrap(old) == old_key
    assert reopened.unwrap(new) == new_key
    assert _mode(keydir / KEKS_FILE) == 0o600
    assert sorted(p.name for p in keydir.iterdir()) == [KEKS_FILE, PSEUDONYM_FILE]


def test_rotation_by_another_process_is_seen_and_never_lost(
    ring: LocalKeyring, keydir: Path
) -> None:
    stale = LocalKeyring.open(keydir)
    ring.rotate()  # v2, written by "another process"
    under_v2 = ring.wrap(key_v2 := os.urandom(32))
    assert stale.unwrap(under_v2) == key_v2  # the stale instance re-reads the file once
    assert stale.rotate() == KekRef(KEK_ID, 3)  # v3, not a second v2 that would orphan data
    assert LocalKeyring.open(keydir).unwrap(under_v2) == key_v2


def test_pseudonym_secret_survives_rotation(ring: LocalKeyring, keydir: Path) -> None:
    before = ring.pseudonym(PATIENT)
    ring.rotate()
    assert LocalKeyring.open(keydir).pseudonym(PATIENT) == before


# --- pseudonyms -----------------------------------------------------------------------------------


def test_pseudonym_is_stable_and_well_formed(ring: LocalKeyring, keydir: Path) -> None:
    value = ring.pseudonym(PATIENT)
    assert re.fullmatch(r"p1_[0-9a-f]{64}", value)
    assert LocalKeyring.open(keydir).pseudonym(PATIENT) == value
    assert ring.pseudonym(PATIENT + " ") != value


def test_pseudonym_known_answer(ring: LocalKeyring, keydir: Path) -> None:
    # Pins the algorithm: a change would orphan every catalog entry ever written.
    path = keydir / PSEUDONYM_FILE
    doc = json.loads(path.read_text())
    doc["secret"] = base64.b64encode(bytes(range(32))).decode()
    path.write_text(json.dumps(doc))
    assert LocalKeyring.open(keydir).pseudonym(PATIENT) == (
        "p1_4e7dd13a35d46254a2c794be1f3a9cb0c260c368fe132ab72558e81983934b5e"
    )


def test_pseudonym_differs_across_secrets(ring: LocalKeyring, tmp_path: Path) -> None:
    other = LocalKeyring.create(tmp_path / "other", kek_id=KEK_ID)
    assert ring.pseudonym(PATIENT) != other.pseudonym(PATIENT)


def test_pseudonym_nfc_and_nfd_agree(ring: LocalKeyring) -> None:
    nfc = unicodedata.normalize("NFC", PATIENT)
    nfd = unicodedata.normalize("NFD", PATIENT)
    assert nfc != nfd  # the test would prove nothing otherwise
    assert ring.pseudonym(nfc) == ring.pseudonym(nfd)


def test_patient_id_never_appears_in_outputs_or_errors(ring: LocalKeyring) -> None:
    texts = [ring.pseudonym(PATIENT), repr(ring), str(ring), repr(ring.current())]
    for bad in ("", "Nguyễn\ud800"):  # empty, and a lone surrogate that cannot be encoded
        with pytest.raises(ValueError) as info:
            ring.pseudonym(bad)
        texts += [str(info.value), repr(info.value)]
        assert info.value.__cause__ is None
        assert info.value.__context__ is None
    for text in texts:
        assert "Nguyễn" not in text
        assert "079123456789" not in text
        assert "Nguy" not in text


def test_repr_shows_no_key_material(ring: LocalKeyring, keydir: Path) -> None:
    doc = json.loads((keydir / KEKS_FILE).read_text())
    secret = json.loads((keydir / PSEUDONYM_FILE).read_text())["secret"]
    text = repr(ring)
    assert doc["versions"]["1"] not in text
    assert secret not in text
    assert KEK_ID in text


def test_record_tokens_are_keyed_stable_and_separate_from_pseudonyms(tmp_path: Path) -> None:
    a = LocalKeyring.create(tmp_path / "a", kek_id="k")
    b = LocalKeyring.create(tmp_path / "b", kek_id="k")
    token = a.record_token("ENC-2026-000123")
    assert token == a.record_token("ENC-2026-000123")
    assert token != b.record_token("ENC-2026-000123")
    assert token.startswith("r1")
    assert len(token) == 40
    assert all(c in "0123456789abcdef" for c in token[2:])
    assert token[2:] not in a.pseudonym("ENC-2026-000123")
    assert "000123" not in token


def test_quarantine_digests_are_keyed_and_apart_from_pseudonyms_and_tokens(tmp_path: Path) -> None:
    # The quarantine index kept SHA-256 of raw ids: a short encounter number is found again by
    # hashing every number. The digest is keyed now, under a label of its own.
    a = LocalKeyring.create(tmp_path / "a", kek_id="k")
    b = LocalKeyring.create(tmp_path / "b", kek_id="k")
    short = "000123"
    digest = a.quarantine_digest(short)
    assert digest is not None
    assert re.fullmatch(r"q1_[0-9a-f]{64}", digest)
    assert digest == a.quarantine_digest(short)
    assert digest != b.quarantine_digest(short)
    assert hashlib.sha256(short.encode()).hexdigest() not in digest
    assert digest[3:] != a.pseudonym(short)[3:]
    assert a.record_token(short)[2:] not in digest


def test_quarantine_digests_take_raw_ids_exactly_as_they_appeared(ring: LocalKeyring) -> None:
    # Ids of bad lines may be anything JSON holds: kept apart, never folded, never refused.
    nfc = unicodedata.normalize("NFC", "hồ")
    nfd = unicodedata.normalize("NFD", "hồ")
    values: list[object] = ["12", 12, [12], {"a": 1}, nfc, nfd, "\ud800", True, 1.5]
    digests = [ring.quarantine_digest(v) for v in values]
    assert None not in digests
    assert len(set(digests)) == len(values)
    assert ring.quarantine_digest(None) is None
