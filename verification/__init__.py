"""Verification: proof that nothing archived has changed, read only.

In: catalog rows (the catalog's hash chain is checked first), the settings (the write path's plus
``[verification]``) and the legal holds the retention register expects (a :class:`HoldSet`).
Out: frozen results (:class:`RecordResult` per record, :class:`CheckResult` per check and
archive-wide check) with a bottom line, a reason code and a sentence, then a :class:`Summary`, a
log and a report. Fails closed: an empty set of checks is an error, a check that raises or cannot
reach the store is *indeterminate*, and only results that all passed pass.

:class:`VerificationRun` runs a :class:`RunPlan` (a :class:`Selection` of records, a check set)
over a process pool; :class:`Verifier` checks one record at a time for whoever needs one.

The names below load on first use: the command line and the settings only need small modules,
while the checks pull in pyHanko and the PDF tools (about a second at every start otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archive.core.lazy import lazy_exports

if TYPE_CHECKING:
    from verification.checks import FIXITY, FULL, RecordCheck
    from verification.config import HoldSet, HoldSource, output_directory, read_settings
    from verification.document import renewal_need, verify_document
    from verification.evidence import Environment
    from verification.inventory import Finding
    from verification.log import log_dir, read_log
    from verification.report import Summary
    from verification.results import (
        CheckResult,
        RecordResult,
        Renewal,
        Status,
        VerificationError,
        bottom_line,
    )
    from verification.run import RunPlan, VerificationRun
    from verification.select import Mode, Selection
    from verification.settings import VerificationSettings, VerifySettings
    from verification.verifier import Verifier
    from verification.worker import FIXITY_CHECKS, FULL_CHECKS

__all__ = [
    "FIXITY",
    "FIXITY_CHECKS",
    "FULL",
    "FULL_CHECKS",
    "CheckResult",
    "Environment",
    "Finding",
    "HoldSet",
    "HoldSource",
    "Mode",
    "RecordCheck",
    "RecordResult",
    "Renewal",
    "RunPlan",
    "Selection",
    "Status",
    "Summary",
    "VerificationError",
    "VerificationRun",
    "VerificationSettings",
    "Verifier",
    "VerifySettings",
    "bottom_line",
    "log_dir",
    "output_directory",
    "read_log",
    "read_settings",
    "renewal_need",
    "verify_document",
]

if not TYPE_CHECKING:
    __getattr__ = lazy_exports(
        __name__,
        __all__,
        (
            "settings",
            "results",
            "config",
            "log",
            "report",
            "inventory",
            "checks",
            "evidence",
            "document",
            "select",
            "verifier",
            "run",
            "worker",
        ),
    )
