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

import importlib
from typing import TYPE_CHECKING, Any

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

_HOME = {
    "verification.checks": ("FIXITY", "FULL", "RecordCheck"),
    "verification.config": ("HoldSet", "HoldSource", "output_directory", "read_settings"),
    "verification.document": ("renewal_need", "verify_document"),
    "verification.evidence": ("Environment",),
    "verification.inventory": ("Finding",),
    "verification.log": ("log_dir", "read_log"),
    "verification.report": ("Summary",),
    "verification.results": (
        "CheckResult",
        "RecordResult",
        "Renewal",
        "Status",
        "VerificationError",
        "bottom_line",
    ),
    "verification.run": ("RunPlan", "VerificationRun"),
    "verification.select": ("Mode", "Selection"),
    "verification.settings": ("VerificationSettings", "VerifySettings"),
    "verification.verifier": ("Verifier",),
    "verification.worker": ("FIXITY_CHECKS", "FULL_CHECKS"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'verification' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
