"""The Verifier: runs a fixed, non-empty set of record checks on catalogued records, fail-closed.

Rules (ARCHITECTURE: "verification fails closed"):

- a Verifier without checks cannot be built;
- every check runs, independently, even after another failed (the report shows all findings);
- a check that raises is *indeterminate* with the exception's type, never a pass; an unreachable
  store is indeterminate too (nothing can be concluded), a version that is listed but cannot be
  read is a failure (the object check decides that);
- a check whose input an earlier stage found broken is indeterminate ``<check>.not_reached``;
- a check that returns something other than a CheckResult for itself is indeterminate;
- a record passes only if every check passed (:func:`verification.results.bottom_line`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from archive.catalog import CatalogRow
from archive.core.errors import StoreUnavailableError
from verification.checks import RecordCheck
from verification.document import renewal_need
from verification.evidence import Environment, Evidence, NotReached
from verification.results import CheckResult, RecordResult, Renewal, VerificationError


class Verifier:
    """Build with :meth:`create`; :meth:`verify` one catalog row at a time."""

    def __init__(self, *, checks: tuple[RecordCheck, ...], env: Environment) -> None:
        if not checks:
            raise VerificationError("a Verifier needs at least one check: none never passes")
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise VerificationError(f"checks must have distinct names: {names}")
        self._checks = checks
        self._env = env

    @classmethod
    def create(cls, *, checks: Sequence[RecordCheck], env: Environment) -> Verifier:
        return cls(checks=tuple(checks), env=env)

    @property
    def check_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._checks)

    def verify(self, row: CatalogRow, *, now: datetime) -> RecordResult:
        """Every check on one record; the renewal need when the document could be read."""
        begin = time.perf_counter()
        evidence = Evidence(row, self._env)
        results = tuple(_run(check, evidence, now) for check in self._checks)
        renewal = self._renewal(evidence, now) if "signature" in self.check_names else None
        return RecordResult(
            encounter_id=row.encounter_id,
            patient_pseudonym=row.patient_pseudonym,
            object_key=row.object_key,
            version_id=row.version_id,
            archive_day=archive_day(row),
            checks=results,
            renewal=renewal,
            seconds=time.perf_counter() - begin,
            stage_seconds=tuple(sorted(evidence.seconds.items())),
        )

    def _renewal(self, evidence: Evidence, now: datetime) -> Renewal | None:
        """The renewal need, read from the document the checks judged; only with the signature
        check (a fixity run does not parse signatures)."""
        try:
            pdf = evidence.pdf_matches()
        except NotReached:
            return None  # no document: the checks say why
        settings = self._env.settings
        reader = evidence.reader()
        try:
            return evidence.timed(
                "horizon",
                lambda: renewal_need(
                    pdf,
                    now=now,
                    settings=settings,
                    weak=self._env.weak,
                    proven_at=evidence.proven_at,
                    reader=reader,
                ),
            )
        except Exception as e:  # noqa: BLE001 - unknown is listed for a person, never dropped
            what = f"the newest document timestamp could not be read ({type(e).__name__})"
            return Renewal("horizon.error", what, None, None)


def _run(check: RecordCheck, evidence: Evidence, now: datetime) -> CheckResult:
    try:
        result = check.run(evidence, now)
    except NotReached as e:
        return CheckResult.indeterminate(check.name, f"{check.name}.not_reached", str(e))
    except StoreUnavailableError as e:
        return CheckResult.indeterminate(
            check.name, f"{check.name}.store_unavailable", f"the store did not answer: {e}"
        )
    except Exception as e:  # noqa: BLE001 - fail closed: a crash is never a pass
        return CheckResult.indeterminate(
            check.name,
            f"{check.name}.error",
            f"the check raised {type(e).__name__}; nothing was concluded",
        )
    if not isinstance(result, CheckResult) or result.check != check.name:
        return CheckResult.indeterminate(
            check.name, f"{check.name}.error", "the check returned no result of its own"
        )
    return result


def archive_day(row: CatalogRow) -> str:
    """The day a record was archived: the run id's date (runs are named YYYYMMDDTHHMMSSZ-...),
    else the signing date. Sampling stratifies by it."""
    run = row.run_id
    if len(run) >= 8 and run[:8].isdigit():
        return f"{run[:4]}-{run[4:6]}-{run[6:8]}"
    return f"{row.signed_at:%Y-%m-%d}"
