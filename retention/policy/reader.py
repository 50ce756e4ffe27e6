"""Reading a parsed policy file into a :class:`RetentionPolicy`, refusing what does not fit.

The grammar of a policy file lives here and only here: the keys each table may have, the form of
ids, codes and ranges, the value sets of the coded matchers (accident codes, HL7 discharge
dispositions, v3 encounter classes), and the checks across tables (a known default class, a
permanent horizon beyond the longest period). The first problem raises :class:`PolicyError` with
the line from :class:`~retention.policy.locator.Locator` and what to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final, NoReturn

from retention.errors import PolicyError
from retention.policy.locator import Locator
from retention.policy.model import (
    MATCHERS,
    MAX_HORIZON_YEARS,
    MAX_PERIOD_YEARS,
    CodeRange,
    RetentionClass,
    RetentionPolicy,
    Rule,
)

_ID: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")
_POLICY_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ICD10_END: Final = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9]{1,2})?")
_PROCEDURE_END: Final = re.compile(r"[0-9]{2}(?:\.[0-9]{1,2})?")
_DISPOSITIONS: Final = frozenset(
    {"home", "alt-home", "other-hcf", "hosp", "long", "aadvice", "exp", "psy", "rehab", "snf"}
    | {"oth"}
)
_ENCOUNTER_CLASSES: Final = frozenset(
    {"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"}
)
_TOP_KEYS: Final = frozenset(
    {"policy_id", "version", "title", "effective_from", "default_class"}
    | {"permanent_horizon_years", "classes", "rules"}
)
_CLASS_KEYS: Final = frozenset({"years", "permanent", "title", "legal_basis", "secondary", "note"})
_RULE_KEYS: Final = frozenset({"class", "note"} | set(MATCHERS))


class Reader:
    """Turns the parsed TOML into a :class:`RetentionPolicy`, or fails naming the line."""

    def __init__(self, tree: dict[str, Any], where: Locator) -> None:
        self.tree, self.where = tree, where

    def fail(self, line: int | None, problem: str) -> NoReturn:
        raise PolicyError(problem, source=self.where.source, line=line)

    def policy(self, sha256: str) -> RetentionPolicy:
        self._known_keys((), self.tree, _TOP_KEYS, "top level")
        policy_id = self._text((), self.tree, "policy_id", pattern=_POLICY_ID)
        version = self._whole((), self.tree, "version")
        classes = tuple(self._class(k, v) for k, v in self._tables("classes").items())
        known = {c.class_id: c for c in classes}
        rules = tuple(self._rule(k, v, known) for k, v in self._tables("rules").items())
        default = self._text((), self.tree, "default_class")
        if default not in known:
            self.fail(self.where.key((), "default_class"), self._unknown(default, known))
        horizon = self._whole((), self.tree, "permanent_horizon_years", most=MAX_HORIZON_YEARS)
        longest = max((c.years for c in classes if c.years is not None), default=0)
        if horizon <= longest:
            self.fail(
                self.where.key((), "permanent_horizon_years"),
                f"permanent_horizon_years ({horizon}) must exceed the longest class "
                f"({longest} years), or a permanent record would unlock first",
            )
        return RetentionPolicy(
            policy_id=policy_id,
            version=version,
            title=self._text((), self.tree, "title", required=False),
            effective_from=self._date((), "effective_from"),
            default_class=default,
            permanent_horizon_years=horizon,
            classes=classes,
            rules=rules,
            source=self.where.source,
            sha256=sha256,
        )

    def _tables(self, name: str) -> dict[str, Any]:
        value = self.tree.get(name)
        if value is None or value == {}:
            self.fail(
                self.where.table(()),
                f"the policy declares no {name}: add at least one [{name}.<id>] table",
            )
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            self.fail(self.where.key((), name), f"{name} must be tables: [{name}.<id>]")
        return value

    def _class(self, class_id: str, body: dict[str, Any]) -> RetentionClass:
        path = ("classes", class_id)
        self._id(path, "class")
        self._known_keys(path, body, _CLASS_KEYS, f"class {class_id!r}")
        permanent = self._flag(path, body, "permanent")
        if permanent and "years" in body:
            self.fail(
                self.where.key(path, "years"),
                f"class {class_id!r} is permanent and has years: keep one of the two",
            )
        return RetentionClass(
            class_id=class_id,
            years=None if permanent else self._period(path, body),
            title=self._text(path, body, "title", required=False),
            legal_basis=self._text(path, body, "legal_basis"),
            secondary=self._flag(path, body, "secondary"),
            note=self._text(path, body, "note", required=False),
        )

    def _rule(self, rule_id: str, body: dict[str, Any], known: Mapping[str, object]) -> Rule:
        path = ("rules", rule_id)
        self._id(path, "rule")
        self._known_keys(path, body, _RULE_KEYS, f"rule {rule_id!r}")
        class_id = self._text(path, body, "class")
        if class_id not in known:
            self.fail(self.where.key(path, "class"), self._unknown(class_id, known))
        if not any(kind in body for kind in MATCHERS):
            self.fail(
                self.where.table(path),
                f"rule {rule_id!r} has no matcher: give one of {', '.join(MATCHERS)}",
            )
        return Rule(
            rule_id=rule_id,
            class_id=class_id,
            icd10=self._ranges(path, body, "icd10", _ICD10_END),
            procedures=self._ranges(path, body, "procedures", _PROCEDURE_END),
            accident_codes=self._codes(path, body, "accident_codes", frozenset("012345678")),
            treatment_results=self._codes(path, body, "treatment_results", None),
            discharge_dispositions=self._codes(path, body, "discharge_dispositions", _DISPOSITIONS),
            encounter_classes=self._codes(path, body, "encounter_classes", _ENCOUNTER_CLASSES),
            deceased=self._matcher_flag(path, body, "deceased"),
            incident_file=self._matcher_flag(path, body, "incident_file"),
        )

    def _id(self, path: tuple[str, ...], kind: str) -> None:
        if not _ID.fullmatch(path[-1]):
            self.fail(
                self.where.table(path),
                f"{kind} id {path[-1]!r} must be lower-case letters, digits and _, "
                "starting with a letter",
            )

    def _known_keys(
        self, path: tuple[str, ...], body: dict[str, Any], allowed: frozenset[str], what: str
    ) -> None:
        for key in body:
            if key not in allowed:
                self.fail(
                    self.where.key(path, key),
                    f"unknown key {key!r} in {what}: allowed are {', '.join(sorted(allowed))}",
                )

    def _unknown(self, class_id: str, known: Mapping[str, object]) -> str:
        return (
            f"unknown class {class_id!r}: declare [classes.{class_id}] or use one of "
            f"{', '.join(known)}"
        )

    @staticmethod
    def _label(path: tuple[str, ...], key: str) -> str:
        return f"{key} in [{'.'.join(path)}]" if path else key

    def _missing(self, path: tuple[str, ...], key: str, what: str) -> NoReturn:
        where = f"[{'.'.join(path)}]" if path else "the top of the file (above the first table)"
        self.fail(self.where.table(path), f"{key!r} is missing from {where}: add {what}")

    def _text(
        self,
        path: tuple[str, ...],
        body: dict[str, Any],
        key: str,
        *,
        required: bool = True,
        pattern: re.Pattern[str] | None = None,
    ) -> str:
        if key not in body:
            if required:
                self._missing(path, key, f'{key} = "..."')
            return ""
        value = body[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(self.where.key(path, key), f"{self._label(path, key)} must be non-empty text")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(
                self.where.key(path, key),
                f"{self._label(path, key)} {value!r} must match {pattern.pattern}",
            )
        return value

    def _period(self, path: tuple[str, ...], body: dict[str, Any]) -> int:
        """A class's ``years``: 1 to :data:`MAX_PERIOD_YEARS`; permanence has its own key."""
        permanent = "permanent = true"
        value = body.get("years")
        if value == "permanent" or (isinstance(value, int) and value > MAX_PERIOD_YEARS):
            self.fail(
                self.where.key(path, "years"),
                f"{self._label(path, 'years')} must be a whole number from 1 to "
                f"{MAX_PERIOD_YEARS}, not {value!r}: for a record kept for good write "
                f"{permanent} instead of years",
            )
        return self._whole(path, body, "years", what=permanent, most=MAX_PERIOD_YEARS)

    def _whole(
        self,
        path: tuple[str, ...],
        body: dict[str, Any],
        key: str,
        *,
        what: str = "",
        most: int | None = None,
    ) -> int:
        if key not in body:
            self._missing(path, key, f"{key} = <whole number>" + (f" or {what}" if what else ""))
        value = body[key]
        wanted = "of at least 1" if most is None else f"from 1 to {most}"
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not whole or value < 1 or (most is not None and value > most):
            self.fail(
                self.where.key(path, key),
                f"{self._label(path, key)} must be a whole number {wanted}, not {value!r}",
            )
        return int(value)

    def _date(self, path: tuple[str, ...], key: str) -> date | None:
        value = self.tree.get(key)
        if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
            self.fail(self.where.key(path, key), f"{key} must be a date such as 2025-07-01")
        return value

    def _flag(self, path: tuple[str, ...], body: dict[str, Any], key: str) -> bool:
        value = body.get(key, False)
        if not isinstance(value, bool):
            self.fail(self.where.key(path, key), f"{key} must be true or false")
        return value

    def _matcher_flag(self, path: tuple[str, ...], body: dict[str, Any], key: str) -> bool:
        if key in body and body[key] is not True:
            self.fail(
                self.where.key(path, key),
                f"{key} can only be true: a matcher never excludes records, so remove "
                "the key instead",
            )
        return key in body

    def _strings(self, path: tuple[str, ...], body: dict[str, Any], key: str) -> list[str]:
        value = body.get(key, [])
        if key in body and (not isinstance(value, list) or not value):
            self.fail(self.where.key(path, key), f'{key} must be a non-empty list: ["..."]')
        for item in value:
            if not isinstance(item, str):
                self.fail(self.where.key(path, key), f"{key} must list strings, not {item!r}")
        return list(value)

    def _codes(
        self,
        path: tuple[str, ...],
        body: dict[str, Any],
        key: str,
        allowed: frozenset[str] | None,
    ) -> tuple[str, ...]:
        values = self._strings(path, body, key)
        for value in values:
            bad = (value not in allowed) if allowed else not re.fullmatch(r"[0-9]{1,2}", value)
            if bad:
                hint = ", ".join(sorted(allowed)) if allowed else "one or two digits"
                self.fail(
                    self.where.value(path, key, value),
                    f"{key}: {value!r} is not a valid code (expected {hint})",
                )
        return tuple(values)

    def _ranges(
        self, path: tuple[str, ...], body: dict[str, Any], key: str, end: re.Pattern[str]
    ) -> tuple[CodeRange, ...]:
        ranges = []
        for text in self._strings(path, body, key):
            low, _, high = text.partition("-")
            high = high or low
            problem = None
            if not (end.fullmatch(low) and end.fullmatch(high)):
                problem = "is malformed"
            elif len(low) != len(high):
                problem = 'has ends of different forms (write "F00-F99" or "Z52.1-Z52.2")'
            elif low > high:
                problem = "runs backwards (the first code must not sort after the last)"
            if problem:
                example = "F00-F99, Y96, Z52.3" if key == "icd10" else "55.6, 37.51, 21.84-21.87"
                self.fail(
                    self.where.value(path, key, text),
                    f"{key}: {text!r} {problem}; examples: {example}",
                )
            ranges.append(CodeRange.spanning(text, low, high))
        return tuple(ranges)
