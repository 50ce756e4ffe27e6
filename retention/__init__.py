"""Retention governance: how long each record stays locked, and every change to that lock.

In: a record's facts (codes and dates, never a name: :class:`RecordFacts`) and the retention
policy (``policy.toml``, shipped or the hospital's own). Out: its retention class and the
retain-until date of its COMPLIANCE lock (:func:`classify`, :func:`retain_until`), which the
write path asks for through :class:`PolicyClassifier`.

Holds, upgrades and disposition change lock state only (a legal hold set or cleared, a lock
extended, an expired version deleted); they never rewrite a record. Destruction and the release
of a hold take two different people, each passed in as an :class:`Actor` with the role their
account holds (:mod:`retention.people`: the approver is the facility head or a delegate).
The :class:`Register` records every such change in a hash-chained locked log, which the verifier
reads (:func:`lock_expectations`) to know which holds and deletions to expect.
:class:`RetentionParts` opens everything a command or the sweep needs from settings.

The names load on first use (:mod:`archive.core.lazy`): the command line reads a few of them
(``Actor``, the errors) and must not pay for the minutes' PDF stack and pyHanko to do so.
"""

from typing import TYPE_CHECKING

from archive.core.lazy import lazy_exports

__all__ = [
    "APPROVING_ROLES",
    "SWEEP",
    "SWEEP_ACTOR",
    "Actor",
    "Approval",
    "Classification",
    "HoldScope",
    "LockAction",
    "Outcome",
    "PolicyClassifier",
    "PolicyError",
    "Proposal",
    "RecordFacts",
    "Register",
    "RetentionError",
    "RetentionParts",
    "RetentionPolicy",
    "UpgradePlan",
    "apply_upgrade",
    "approve",
    "classify",
    "confirm",
    "confirm_release",
    "facts_from_export",
    "list_holds",
    "load_facts_file",
    "load_policy",
    "load_proposal",
    "lock_expectations",
    "place_hold",
    "plan_upgrade",
    "read_minutes",
    "request_release",
    "retain_until",
]

if TYPE_CHECKING:
    from retention.classifier import PolicyClassifier
    from retention.disposition import Approval, Outcome, Proposal, approve, confirm, load_proposal
    from retention.errors import PolicyError, RetentionError
    from retention.facts import RecordFacts
    from retention.holds import (
        HoldScope,
        confirm_release,
        list_holds,
        place_hold,
        request_release,
    )
    from retention.minutes import read_minutes
    from retention.parts import RetentionParts, lock_expectations
    from retention.people import APPROVING_ROLES, SWEEP, SWEEP_ACTOR, Actor
    from retention.policy import (
        Classification,
        LockAction,
        RetentionPolicy,
        classify,
        load_policy,
        retain_until,
    )
    from retention.register import Register
    from retention.upgrades import (
        UpgradePlan,
        apply_upgrade,
        facts_from_export,
        load_facts_file,
        plan_upgrade,
    )
else:
    __getattr__ = lazy_exports(
        __name__,
        __all__,
        (
            "errors",
            "people",
            "facts",
            "policy",
            "classifier",
            "register",
            "holds",
            "upgrades",
            "disposition",
            "minutes",
            "parts",
        ),
    )
