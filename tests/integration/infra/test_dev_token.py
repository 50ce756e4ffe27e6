"""The demo's token (`make demo SIGNER_TOKEN=1`): `stack up` puts the development signer's key on
a SoftHSM2 token under data_dir once; every later `stack up` finds it and changes nothing.

SoftHSM2 reads its configuration once per process and this test process already uses the tests'
one, so each `stack up` here is a process of its own, as it is on a hospital's machine.
"""

from __future__ import annotations

import multiprocessing
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.sign import SignerConfig, load_signer
from archive.sign.certificates import cert_sha256
from archive.sign.config import load_certificates
from infra import softhsm
from infra.pki import DevPki, ensure_dev_pki
from infra.ports import throwaway_settings
from infra.settings import AppSettings

pytestmark = pytest.mark.integration


def _settings(data_dir: Path, pki_port: int) -> AppSettings:
    settings = throwaway_settings(data_dir)
    stack = settings.stack.model_copy(update={"pki_port": pki_port})
    signer = settings.signer.model_copy(update={"dev_token": True})
    return settings.model_copy(update={"stack": stack, "signer": signer})


def _stack_up(data_dir: Path, pki_port: int, times: int) -> tuple[list[str], str, int]:
    """In a fresh process: what ensure_dev_token says each time, the signing certificate's
    SHA-256 the settings then sign with, and how many private keys the token holds."""
    os.environ.pop(softhsm.CONF_VAR, None)  # this process's own configuration, from settings
    settings = _settings(data_dir, pki_port)
    said = [softhsm.ensure_dev_token(settings) for _ in range(times)]
    key = load_signer(SignerConfig.from_settings(settings))
    session = key.pyhanko_signer().pkcs11_session  # type: ignore[attr-defined]
    from pkcs11 import Attribute, ObjectClass

    keys = len(list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})))
    return said, cert_sha256(key.certificate), keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_dev_token_is_created_once_with_private_pins_and_found_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    settings = throwaway_settings(data_dir)
    pki = ensure_dev_pki(settings.pki_dir, port=settings.stack.pki_port, now=datetime.now(UTC))
    context = multiprocessing.get_context("spawn")
    runs = []
    for times in (2, 1):  # `stack up` twice in one process, then once more in another
        with ProcessPoolExecutor(1, context) as pool:
            runs.append(pool.submit(_stack_up, data_dir, settings.stack.pki_port, times).result())
    (first, again), hospital, keys = runs[0]
    assert first.startswith("token 'emr-archive-dev' created")
    assert "created" not in again
    [later], hospital_later, keys_later = runs[1]
    assert "created" not in later
    signer = load_certificates(
        DevPki(settings.pki_dir, settings.stack.pki_port).cert_path("hospital-signer")
    )[0]
    assert hospital == hospital_later == cert_sha256(signer)
    assert keys == keys_later == 1  # imported once, never again
    base = data_dir / "softhsm"
    secrets_written = [base / "user.pin", base / "softhsm2.conf", *(base / "pins").iterdir()]
    assert len(secrets_written) == 4  # the user PIN twice (where settings read it), the SO PIN
    assert {p.name: _mode(p) for p in secrets_written} == {p.name: 0o600 for p in secrets_written}
    assert _mode(base / "tokens") == 0o700
    assert (base / "user.pin").read_text() == (base / "pins" / "emr-archive-dev.pin").read_text()
    assert pki.pki_dir == settings.pki_dir
