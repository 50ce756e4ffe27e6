"""Worker processes: each loads the keyring, the trust policy and a store client once, then
verifies chunks of records. Module state, because a spawned process pool's initializer can only
leave its work where the task function finds it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Final

from archive import wiring
from archive.catalog import CatalogRow
from archive.core.settings import Settings
from archive.seal import open_keys
from archive.sign import SignerConfig, TrustPolicy
from verification.checks import FIXITY, FULL, RecordCheck
from verification.config import HoldSet, VerificationSettings, read_settings
from verification.evidence import Environment
from verification.results import RecordResult, VerificationError
from verification.settings import weak_table
from verification.verifier import Verifier

FULL_CHECKS: Final = "full"
FIXITY_CHECKS: Final = "fixity"
CHECK_SETS = {FULL_CHECKS: FULL, FIXITY_CHECKS: FIXITY}

_VERIFIER: Verifier | None = None
_THREADS: ThreadPoolExecutor | None = None


def environment(
    settings: Settings,
    vsettings: VerificationSettings,
    holds: HoldSet,
    signers: frozenset[str] = frozenset(),
    as_of: datetime | None = None,
) -> Environment:
    """What every record check shares; the read-only store identity, because verifying writes
    nothing. ``signers``: the catalog's signer fingerprints, accepted besides the settings'."""
    return Environment(
        store=wiring.open_store(read_settings(settings, vsettings), read_only=True),
        keys=open_keys(settings),
        seal=settings.seal,
        trust=TrustPolicy.load(SignerConfig.from_settings(settings), known_signers=signers),
        holds=holds,
        settings=vsettings,
        weak=weak_table(settings),
        as_of=as_of,
    )


def init_worker(
    settings: Settings,
    vsettings: VerificationSettings,
    holds: HoldSet,
    checks: str,
    signers: frozenset[str] = frozenset(),
    as_of: datetime | None = None,
) -> None:
    global _VERIFIER, _THREADS  # one verifier and thread pool per process, built once
    check_set(checks)  # before opening anything
    env = environment(settings, vsettings, holds, signers, as_of)
    _VERIFIER, _THREADS = build_verifier(env, vsettings, checks)


def build_verifier(
    env: Environment, vsettings: VerificationSettings, checks: str
) -> tuple[Verifier, ThreadPoolExecutor]:
    """A process's verifier over ``env`` and the threads it verifies records on."""
    verifier = Verifier.create(checks=check_set(checks), env=env)
    # Fixity waits on the store most of the time (HEAD, GET): a few records in flight per process
    # overlap that wait (2x measured). Signature and PDF/A validation are CPU-bound Python: more
    # threads only fight over the GIL (25% slower measured), so one per process.
    threads = vsettings.threads if checks == FIXITY_CHECKS else 1
    return verifier, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verify")


def check_set(checks: str) -> tuple[RecordCheck, ...]:
    if checks not in CHECK_SETS:
        raise VerificationError(f"unknown check set {checks!r}: use one of {sorted(CHECK_SETS)}")
    return tuple(CHECK_SETS[checks])


def verify_chunk(rows: list[CatalogRow], now: datetime) -> list[RecordResult]:
    verifier, threads = _VERIFIER, _THREADS
    if verifier is None or threads is None:
        raise VerificationError("verification worker process was not initialised")
    return verify_rows(verifier, threads, rows, now)


def verify_rows(
    verifier: Verifier, threads: ThreadPoolExecutor, rows: list[CatalogRow], now: datetime
) -> list[RecordResult]:
    return list(threads.map(lambda row: verifier.verify(row, now=now), rows))
