"""The three chains (audit log, retention register, access register) checked local <-> bucket.

An insider who can write the local directory but does not hold the keyring tries to chain a
forged event on (a back-dated grant, a ``hold.released``, a ``disposition.destroyed``), or to
roll the newest segment back so that a revoked grant is in force again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.audit import AuditEvent, AuditLog, canonical
from archive.core.errors import AuditChainError, StoreUnavailableError
from retention import Register
from retrieval.access import ACCESS_PREFIX, AccessRegister
from tests.support.chains import CHAIN_KEY, forge_next_segment
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

Append = Callable[[dict[str, Any]], None]


def _audit(directory: Path, store: MemoryStore) -> tuple[Append, Callable[[], bool]]:
    log = AuditLog.open(directory, store, key=CHAIN_KEY)

    def append(payload: dict[str, Any]) -> None:
        action = str(payload["type"])
        log.append(AuditEvent(actor="lan", role="records-officer", action=action, recorded=NOW))
        log.flush(now=NOW)

    return append, lambda: log.verify_chain().passed


def _retention(directory: Path, store: MemoryStore) -> tuple[Append, Callable[[], bool]]:
    register = Register.open(directory, store, key=CHAIN_KEY)
    return (lambda p: register.append([p], now=NOW)), lambda: register.verify().passed


def _access(directory: Path, store: MemoryStore) -> tuple[Append, Callable[[], bool]]:
    register = AccessRegister.open(directory, store, key=CHAIN_KEY)
    return (lambda p: register.append(p, now=NOW)), lambda: register.verify().passed


CHAINS = {"audit": _audit, "retention": _retention, "access": _access}
FORGED = {
    "audit": {"action": "disposition.destroyed", "actor": "lan", "role": "records-officer"},
    "retention": {"type": "hold.released", "hold_id": "h-1", "by": "lan"},
    "access": {"type": "grant.issued", "grant_id": "g-back", "valid_from": "2020-01-01"},
}


def _keys(store: MemoryStore) -> list[str]:
    return [v.key for v in store.list_versions("")]


@pytest.mark.parametrize("move_head", [True, False], ids=["head-rewritten", "head-untouched"])
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_a_forged_local_segment_fails_verify_and_is_never_uploaded(
    tmp_path: Path, chain: str, move_head: bool
) -> None:
    store, directory = MemoryStore(), tmp_path / chain
    append, _ = CHAINS[chain](directory, store)
    append({"type": "grant.revoked", "grant_id": "g-0"})
    uploaded = _keys(store)
    forge_next_segment(directory, FORGED[chain], move_head=move_head)

    append2, verify = CHAINS[chain](directory, store)  # a fresh process, as the next command
    assert not verify()
    with pytest.raises(AuditChainError):
        append2({"type": "grant.revoked", "grant_id": "g-1"})
    assert _keys(store) == uploaded


def test_a_rolled_back_access_register_does_not_reactivate_a_revoked_grant(
    tmp_path: Path,
) -> None:
    store, directory = MemoryStore(), tmp_path / "access"
    register = AccessRegister.open(directory, store, key=CHAIN_KEY)
    grant: dict[str, Any] = {
        "type": "grant.issued",
        "grant_id": "g-1",
        "inspector": "insp.an",
        "facility": "79001",
        "encounter_ids": [],
        "patient_pseudonym": None,
        "valid_from": NOW.isoformat(),
        "valid_until": (NOW + timedelta(days=30)).isoformat(),
        "issued_by": "lan",
        "case_ref": "TT-1/2026",
    }
    register.append(grant, now=NOW)
    saved_head = (directory / "HEAD").read_bytes()  # a copy the insider kept
    register.append({"type": "grant.revoked", "grant_id": "g-1"}, now=NOW)
    assert register.grants() == {}

    (directory / "segments" / "0000000002.jsonl").unlink()  # the revocation
    (directory / "HEAD").write_bytes(saved_head)  # replayed: whatever seal it carries holds

    reopened = AccessRegister.open(directory, store, key=CHAIN_KEY)  # the portal's next start
    with pytest.raises(AuditChainError, match="lacks"):
        reopened.grants()
    assert not reopened.verify().passed


class FlakyStore(MemoryStore):
    """A bucket that refuses the next ``failures`` uploads, as during a network cut."""

    failures: int = 0

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> Any:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("connection refused")
        return super().put_locked(key, data, retain_until=retain_until)


def test_a_failed_upload_is_retried_by_the_next_append_of_the_same_process(
    tmp_path: Path,
) -> None:
    store = FlakyStore()
    register = AccessRegister.open(tmp_path / "access", store, key=CHAIN_KEY)
    register.append({"type": "token.revoked", "token_id": "t-1"}, now=NOW)
    store.failures = 1
    with pytest.raises(StoreUnavailableError):
        register.append({"type": "token.revoked", "token_id": "t-2"}, now=NOW)
    assert register.revoked_tokens() == {"t-1", "t-2"}  # recorded locally, upload pending
    register.append({"type": "token.revoked", "token_id": "t-3"}, now=NOW)
    assert len(_keys(store)) == 3  # the pending segment went up before the new one
    assert AccessRegister.open(tmp_path / "access", store, key=CHAIN_KEY).verify().passed


def test_a_chain_from_before_sealed_heads_is_read_checked_by_content_and_sealed_on_append(
    tmp_path: Path,
) -> None:
    # What the previous release left: an unsealed HEAD, copies named without a digest.
    store, directory = MemoryStore(), tmp_path / "access"
    register = AccessRegister.open(directory, MemoryStore(), key=CHAIN_KEY)
    register.append({"type": "token.revoked", "token_id": "t-1"}, now=NOW)
    head = json.loads((directory / "HEAD").read_bytes())
    (directory / "HEAD").write_bytes(canonical({"seq": head["seq"], "sha256": head["sha256"]}))
    segment = (directory / "segments" / "0000000001.jsonl").read_bytes()
    store.put_locked(ACCESS_PREFIX + "0000000001.jsonl", segment, retain_until=NOW)

    reopened = AccessRegister.open(directory, store, key=CHAIN_KEY)
    assert reopened.revoked_tokens() == {"t-1"}
    assert reopened.verify().passed
    store.corrupt(ACCESS_PREFIX + "0000000001.jsonl", version_id="v00000001", data=b"x")
    assert "differs from its locked copy" in reopened.verify().reason  # opened and compared
    store.corrupt(ACCESS_PREFIX + "0000000001.jsonl", version_id="v00000001", data=segment)
    reopened.append({"type": "token.revoked", "token_id": "t-2"}, now=NOW)
    assert "mac" in json.loads((directory / "HEAD").read_bytes())


def test_a_segment_another_process_could_not_upload_goes_up_with_our_next_append(
    tmp_path: Path,
) -> None:
    store = FlakyStore()
    ours = AccessRegister.open(tmp_path / "access", store, key=CHAIN_KEY)
    theirs = AccessRegister.open(tmp_path / "access", store, key=CHAIN_KEY)
    ours.append({"type": "token.revoked", "token_id": "t-1"}, now=NOW)
    store.failures = 1
    with pytest.raises(StoreUnavailableError):
        theirs.append({"type": "token.revoked", "token_id": "t-2"}, now=NOW)
    assert ours.revoked_tokens() == {"t-1", "t-2"}  # vouched for by the sealed HEAD
    ours.append({"type": "token.revoked", "token_id": "t-3"}, now=NOW)
    assert len(_keys(store)) == 3
    assert AccessRegister.open(tmp_path / "access", store, key=CHAIN_KEY).verify().passed
