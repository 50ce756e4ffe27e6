"""Retention policy: load and check a policy file, classify records, compute lock dates.

Pure: nothing here reads the clock, the environment or the network. The only file read is the
policy itself, by :func:`load_policy` (``None`` loads the shipped ``policy.toml``, whose comments
explain the format and the sources of every figure).

* :func:`classify` gives a record the **longest** class among the rules it matches; no match gives
  the policy's default class. :func:`dossier_class` does the same for a dossier's records.
* :func:`retain_until` counts from the end of the local calendar year of discharge: discharged in
  year Y (Asia/Ho_Chi_Minh) and kept N years means locked until 1 January Y+N+1, 00:00 local time.
  A permanent class is locked ``permanent_horizon_years`` ahead (Object Lock needs a date) and
  stays recognisable through :attr:`Classification.is_permanent`.
* :func:`plan_lock` and :func:`compare` say what a new policy would do to existing locks: extend
  them, or leave them ("shorter rule, lock unchanged": a COMPLIANCE lock is never shortened).

Loading refuses, naming the line: TOML syntax errors, unknown keys, a class declared twice, a
missing or non-integer ``version``, years that are not a whole number of at least 1, a rule naming
an unknown class, a malformed code or range, and **overlapping rules**: two matchers of the same
kind (in any two rules, or twice in one rule) that can match a common value. For ICD-10 and
ICD-9-CM that means ranges that intersect, including identical and nested ones; for the listed
codes it means the same value twice; for the ``deceased`` / ``incident_file`` flags it means two
rules setting the same flag. Nesting is refused even between classes of different periods: the
longest class always wins, so a narrower rule could only raise its codes, never lower them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from retention.errors import PolicyError
from retention.facts import RecordFacts, code_key, icd10_key, procedure_key

DEFAULT_TZ: Final = "Asia/Ho_Chi_Minh"
SHIPPED_POLICY: Final = "policy.toml"

_ID: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")
_POLICY_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ICD10_END: Final = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9]{1,2})?")
_PROCEDURE_END: Final = re.compile(r"[0-9]{2}(?:\.[0-9]{1,2})?")
_TOP: Final = "\U0010ffff"  # sorts after every character: "F99" + _TOP bounds F99 and its children
_DISPOSITIONS: Final = frozenset(
    {"home", "alt-home", "other-hcf", "hosp", "long", "aadvice", "exp", "psy", "rehab", "snf"}
    | {"oth"}
)
_ENCOUNTER_CLASSES: Final = frozenset(
    {"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC", "SS", "VR"}
)
_MATCHERS: Final = {
    "icd10": "ICD-10 diagnosis",
    "procedures": "ICD-9-CM procedure",
    "accident_codes": "accident code MA_TAI_NAN",
    "treatment_results": "treatment result KET_QUA_DTRI",
    "discharge_dispositions": "discharge disposition",
    "encounter_classes": "encounter class",
    "deceased": "patient deceased",
    "incident_file": "incident-resolution file",
}
_TOP_KEYS: Final = frozenset(
    {"policy_id", "version", "title", "effective_from", "default_class"}
    | {"permanent_horizon_years", "classes", "rules"}
)
_CLASS_KEYS: Final = frozenset({"years", "permanent", "title", "legal_basis", "secondary", "note"})
_RULE_KEYS: Final = frozenset({"class", "note"} | set(_MATCHERS))


# --- the policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRange:
    """An inclusive range of codes with their children: "F00-F99", "Y96", "55.6", "Z52.1-Z52.2"."""

    text: str
    low: str
    high: str  # the last code plus _TOP, so "F99.9" is inside "F00-F99"

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.low <= code <= self.high

    def overlaps(self, other: CodeRange) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionClass:
    class_id: str
    years: int | None  # None: permanent
    title: str
    legal_basis: str  # e.g. "TT 33/2025/TT-BYT, phụ lục, dòng 44"
    secondary: bool  # the figure comes from secondary notes (2°): verify against the text
    note: str

    @property
    def is_permanent(self) -> bool:
        return self.years is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Assigns ``class_id`` to a record that matches ANY of its matchers."""

    rule_id: str
    class_id: str
    icd10: tuple[CodeRange, ...] = ()
    procedures: tuple[CodeRange, ...] = ()
    accident_codes: tuple[str, ...] = ()
    treatment_results: tuple[str, ...] = ()
    discharge_dispositions: tuple[str, ...] = ()
    encounter_classes: tuple[str, ...] = ()
    deceased: bool = False
    incident_file: bool = False

    def matches(self, probe: _Probe) -> tuple[str, ...]:
        """The kinds of matcher that matched (empty when the rule does not apply)."""
        hits = {
            "icd10": any(c in r for r in self.icd10 for c in probe.icd10),
            "procedures": any(c in r for r in self.procedures for c in probe.procedures),
            "accident_codes": probe.accident in self.accident_codes,
            "treatment_results": probe.result in self.treatment_results,
            "discharge_dispositions": probe.disposition in self.discharge_dispositions,
            "encounter_classes": probe.encounter in self.encounter_classes,
            "deceased": self.deceased and probe.deceased,
            "incident_file": self.incident_file and probe.incident_file,
        }
        return tuple(kind for kind, hit in hits.items() if hit)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    policy_id: str
    version: int
    title: str
    effective_from: date | None
    default_class: str
    permanent_horizon_years: int
    classes: tuple[RetentionClass, ...]  # in declaration order, which breaks ties of equal periods
    rules: tuple[Rule, ...]
    source: str
    sha256: str  # of the policy file's bytes: two files claiming one version can be told apart

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def retention_class(self, class_id: str) -> RetentionClass:
        for cls in self.classes:
            if cls.class_id == class_id:
                return cls
        known = ", ".join(c.class_id for c in self.classes)
        raise PolicyError(
            f"policy {self.ref} has no class {class_id!r} (it has: {known})", source=self.source
        )

    def rank(self, class_id: str) -> tuple[bool, int, int]:
        """Sort key: permanent first, then more years, then earlier declaration."""
        index = next(i for i, c in enumerate(self.classes) if c.class_id == class_id)
        cls = self.classes[index]
        return (cls.is_permanent, cls.years or 0, -index)


# --- loading --------------------------------------------------------------------------------------


def load_policy(path: str | Path | None = None) -> RetentionPolicy:
    """Load and check a policy file; ``None`` loads the policy shipped with emr-archive."""
    if path is None:
        data = resources.files("retention").joinpath(SHIPPED_POLICY).read_bytes()
        return parse_policy(data, source=f"retention/{SHIPPED_POLICY} (shipped)")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PolicyError(
            f"cannot read the policy file ({e.strerror}): check the path", source=str(path)
        ) from e
    return parse_policy(data, source=str(path))


def parse_policy(data: bytes | str, *, source: str = "<policy>") -> RetentionPolicy:
    """Check a policy given as TOML text; the first problem raises :class:`PolicyError`."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PolicyError(
            "the file is not UTF-8: save it as UTF-8", source=source, line=line
        ) from e
    where = _Locator(text, source)
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"at line (\d+)", str(e))
        raise PolicyError(
            f"not valid TOML ({e}); fix the syntax",
            source=source,
            line=int(found.group(1)) if found else None,
        ) from e
    policy = _Reader(tree, where).policy(hashlib.sha256(raw).hexdigest())
    _check_overlaps(policy.rules, where)
    return policy


_HEADER: Final = re.compile(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?")
_KEY: Final = re.compile(r"\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


class _Locator:
    """Line numbers for tables, keys and values (tomllib keeps none). It reads table headers and
    ``key =`` lines, which covers how policy files are written; anything else falls back to the
    enclosing table's line."""

    def __init__(self, text: str, source: str) -> None:
        self.source, self.lines = source, text.splitlines()
        self.tables: dict[tuple[str, ...], int] = {}
        self.starts: list[int] = []
        for number, line in enumerate(self.lines, 1):
            header = _HEADER.fullmatch(line)
            if header is None:
                continue
            name = tuple(p.strip().strip("\"'") for p in header.group(1).split("."))
            if name in self.tables and len(name) == 2 and name[0] in ("classes", "rules"):
                kind = "class" if name[0] == "classes" else "rule"
                raise PolicyError(
                    f"{kind} {name[1]!r} is declared twice (first at line {self.tables[name]}): "
                    "keep one table and merge the two",
                    source=source,
                    line=number,
                )
            self.tables.setdefault(name, number)
            self.starts.append(number)

    def table(self, path: tuple[str, ...]) -> int | None:
        """The header line of a table; for the top level, the first table's (keys go above it)."""
        if not path:
            return self.starts[0] if self.starts else max(len(self.lines), 1)
        return self.tables.get(path)

    def key(self, path: tuple[str, ...], key: str) -> int | None:
        """The ``key =`` line in a table; for a sub-table (``[classes]``), its first header."""
        first, last = self._span(path) if not path or path in self.tables else (1, 0)
        for number in range(first, last + 1):
            found = _KEY.match(self.lines[number - 1])
            if found and found.group(1).strip("\"'") == key:
                return number
        inner = [n for name, n in self.tables.items() if name[: len(path) + 1] == (*path, key)]
        return min(inner) if inner else self.table(path)

    def value(self, path: tuple[str, ...], key: str, value: str) -> int | None:
        start = self.key(path, key)
        _, last = self._span(path)
        if start is None:
            return None
        for number in range(start, last + 1):
            text = self.lines[number - 1]
            if number > start and _KEY.match(text):
                break
            if f'"{value}"' in text or f"'{value}'" in text:
                return number
        return start

    def _span(self, path: tuple[str, ...]) -> tuple[int, int]:
        first = self.tables.get(path, 0) + 1 if path else 1
        later = [s for s in self.starts if s >= first]
        return first, (later[0] - 1 if later else len(self.lines))


class _Reader:
    """Turns the parsed TOML into a :class:`RetentionPolicy`, or fails naming the line."""

    def __init__(self, tree: dict[str, Any], where: _Locator) -> None:
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
        horizon = self._whole((), self.tree, "permanent_horizon_years")
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
            years=None if permanent else self._whole(path, body, "years", what="permanent = true"),
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
        if not any(kind in body for kind in _MATCHERS):
            self.fail(
                self.where.table(path),
                f"rule {rule_id!r} has no matcher: give one of {', '.join(_MATCHERS)}",
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

    def _whole(
        self, path: tuple[str, ...], body: dict[str, Any], key: str, *, what: str = ""
    ) -> int:
        if key not in body:
            self._missing(path, key, f"{key} = <whole number>" + (f" or {what}" if what else ""))
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(
                self.where.key(path, key),
                f"{self._label(path, key)} must be a whole number of at least 1, not {value!r}",
            )
        return value

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
            ranges.append(CodeRange(text, low, high + _TOP))
        return tuple(ranges)


def _check_overlaps(rules: tuple[Rule, ...], where: _Locator) -> None:
    """Refuse two matchers of one kind that can match a common value (see the module doc)."""
    items: list[tuple[int, Rule, str, str, object]] = []
    for rule in rules:
        path = ("rules", rule.rule_id)
        for kind in _MATCHERS:
            value = getattr(rule, kind)
            entries = value if isinstance(value, tuple) else ((kind,) if value else ())
            for entry in entries:
                text = entry.text if isinstance(entry, CodeRange) else str(entry)
                line = where.value(path, kind, text) if text != kind else where.key(path, kind)
                items.append((line or 0, rule, kind, text, entry))
    for first, second in combinations(sorted(items, key=lambda i: i[0]), 2):
        (line_a, rule_a, kind_a, text_a, a), (line_b, rule_b, kind_b, text_b, b) = first, second
        clash = a.overlaps(b) if isinstance(a, CodeRange) and isinstance(b, CodeRange) else a == b
        if kind_a != kind_b or not clash:
            continue
        other = "the same rule" if rule_a is rule_b else f"rule {rule_a.rule_id!r}"
        if rule_a.class_id != rule_b.class_id:
            other += f" (class {rule_a.class_id!r}, here {rule_b.class_id!r})"
        if isinstance(b, CodeRange):
            clash_text = f"{kind_b} {text_b!r} overlaps {text_a!r} of {other} at line {line_a}"
            fix = "a code may belong to one rule only: split the range or drop one entry"
        elif text_b == kind_b:
            clash_text = f"{kind_b} = true is also set by {other} at line {line_a}"
            fix = "set it in one rule only"
        else:
            clash_text = f"{kind_b} {text_b!r} is also listed by {other} at line {line_a}"
            fix = "a code may belong to one rule only: list it once"
        raise PolicyError(
            f"overlapping rules: rule {rule_b.rule_id!r}: {clash_text}; {fix}",
            source=where.source,
            line=line_b or None,
        )


# --- classification -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Probe:
    icd10: tuple[str, ...]
    procedures: tuple[str, ...]
    accident: str | None
    result: str | None
    disposition: str | None
    encounter: str | None
    deceased: bool
    incident_file: bool

    @classmethod
    def of(cls, facts: RecordFacts) -> _Probe:
        disposition = code_key(facts.discharge_disposition)
        encounter = code_key(facts.encounter_class)
        return cls(
            icd10=tuple(icd10_key(c) for c in facts.icd10_codes),
            procedures=tuple(procedure_key(c) for c in facts.procedure_codes),
            accident=code_key(facts.accident_code),
            result=code_key(facts.treatment_result),
            disposition=disposition.lower() if disposition else None,
            encounter=encounter.upper() if encounter else None,
            deceased=facts.deceased,
            incident_file=facts.incident_file,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """A record's (or dossier's) retention class. ``reason`` never contains codes or dates."""

    class_id: str
    years: int | None  # None: permanent
    lock_years: int  # years for the Object Lock: ``years``, or the permanent horizon
    matched_rules: tuple[str, ...]
    reason: str

    def __post_init__(self) -> None:
        if self.lock_years < 1 or self.years not in (None, self.lock_years):
            raise ValueError("Classification.lock_years must be years, or >= 1 when permanent")

    @property
    def is_permanent(self) -> bool:
        return self.years is None


def classify(facts: RecordFacts, policy: RetentionPolicy) -> Classification:
    """The longest class among the rules ``facts`` match, else the policy's default class."""
    probe = _Probe.of(facts)
    hits = [(rule, kinds) for rule in policy.rules if (kinds := rule.matches(probe))]
    if not hits:
        cls = policy.retention_class(policy.default_class)
        return _classification(policy, cls, (), "no rule matched, so the default class applies")
    winner = max({rule.class_id for rule, _ in hits}, key=policy.rank)
    because = "; ".join(
        f"rule {rule.rule_id} ({', '.join(_MATCHERS[k] for k in kinds)}) gives {rule.class_id}"
        for rule, kinds in hits
    )
    tail = f"; the longest, {winner}, applies" if len({r.class_id for r, _ in hits}) > 1 else ""
    cls = policy.retention_class(winner)
    return _classification(policy, cls, tuple(r.rule_id for r, _ in hits), because + tail)


def classification_for(policy: RetentionPolicy, class_id: str) -> Classification:
    """A class assigned by the caller rather than by rules (treatment registers: ``register``)."""
    cls = policy.retention_class(class_id)
    return _classification(policy, cls, (), "assigned explicitly by the caller")


def _classification(
    policy: RetentionPolicy, cls: RetentionClass, rules: tuple[str, ...], why: str
) -> Classification:
    lock = cls.years if cls.years is not None else policy.permanent_horizon_years
    reason = (
        f"{policy.ref}: class {cls.class_id} ({_period(cls.years)}; {cls.legal_basis}"
        f"{' (2°)' if cls.secondary else ''}): {why}."
    )
    return Classification(
        class_id=cls.class_id, years=cls.years, lock_years=lock, matched_rules=rules, reason=reason
    )


def dossier_class(classifications: Iterable[Classification]) -> Classification:
    """A dossier keeps the longest class of its records (Archive Law 33/2024 art. 15); permanent
    beats any number of years; among equals the first given wins."""
    members = list(classifications)
    if not members:
        raise ValueError("a dossier needs at least one classified record")
    best = max(members, key=lambda c: (c.is_permanent, c.lock_years))  # max keeps the first
    rules = tuple(dict.fromkeys(r for c in members for r in c.matched_rules))
    counts: dict[str, int] = {}
    for c in members:
        counts[c.class_id] = counts.get(c.class_id, 0) + 1
    present = ", ".join(f"{k} x{n}" for k, n in counts.items())
    reason = (
        f"dossier of {len(members)} record(s) ({present}): the longest class, "
        f"{best.class_id} ({_period(best.years)}), applies to the whole dossier."
    )
    return Classification(
        class_id=best.class_id,
        years=best.years,
        lock_years=best.lock_years,
        matched_rules=rules,
        reason=reason,
    )


def _period(years: int | None) -> str:
    return "permanent" if years is None else f"{years} year{'s' if years != 1 else ''}"


# --- dates ----------------------------------------------------------------------------------------


def retain_until(
    classification: Classification, *, discharged_at: datetime, tz: str = DEFAULT_TZ
) -> datetime:
    """End of 31 December of (local discharge year + lock years), in UTC."""
    _aware(discharged_at=discharged_at)
    zone = _zone(tz)
    year = discharged_at.astimezone(zone).year + classification.lock_years + 1
    return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)


def is_expired(retain_until: datetime, now: datetime) -> bool:
    """Whether the retention ending at ``retain_until`` is over at ``now``."""
    _aware(retain_until=retain_until, now=now)
    return now >= retain_until


def _aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as {DEFAULT_TZ!r}"
        ) from e


# --- policy changes -------------------------------------------------------------------------------


class LockAction(StrEnum):
    EXTEND = "extend"  # the new date is later: extend the lock
    UNCHANGED = "unchanged"  # the new date is the current one
    KEEP_LONGER = "shorter rule, lock unchanged"  # the new date is earlier: never shortened

    @classmethod
    def between(cls, new_until: datetime, current: datetime) -> LockAction:
        """What a lock until ``current`` becomes when a rule says ``new_until``."""
        if new_until > current:
            return cls.EXTEND
        return cls.UNCHANGED if new_until == current else cls.KEEP_LONGER


@dataclass(frozen=True, slots=True, kw_only=True)
class LockChange:
    """What a new policy does to one record's lock."""

    old: Classification
    new: Classification
    old_retain_until: datetime
    new_retain_until: datetime
    current_retain_until: datetime  # the lock as it stands (by default the old policy's date)
    action: LockAction

    @property
    def retain_until(self) -> datetime:
        """The lock date after applying the change (never earlier than the current one)."""
        return max(self.current_retain_until, self.new_retain_until)

    @property
    def class_changed(self) -> bool:
        return self.old.class_id != self.new.class_id


def plan_lock(
    old_policy: RetentionPolicy,
    new_policy: RetentionPolicy,
    facts: RecordFacts,
    *,
    current_retain_until: datetime | None = None,
    tz: str = DEFAULT_TZ,
) -> LockChange:
    """Compare one record under two policies against its current lock date."""
    old, new = classify(facts, old_policy), classify(facts, new_policy)
    old_until = retain_until(old, discharged_at=facts.discharged_at, tz=tz)
    new_until = retain_until(new, discharged_at=facts.discharged_at, tz=tz)
    current = old_until if current_retain_until is None else current_retain_until
    _aware(current_retain_until=current)
    action = LockAction.between(new_until, current)
    return LockChange(
        old=old,
        new=new,
        old_retain_until=old_until,
        new_retain_until=new_until,
        current_retain_until=current,
        action=action,
    )


def compare(
    old_policy: RetentionPolicy,
    new_policy: RetentionPolicy,
    facts_iter: Iterable[RecordFacts],
    *,
    tz: str = DEFAULT_TZ,
) -> Iterator[LockChange]:
    """:func:`plan_lock` for each record, in order, assuming each lock is the old policy's date."""
    for facts in facts_iter:
        yield plan_lock(old_policy, new_policy, facts, tz=tz)


__all__ = [
    "DEFAULT_TZ",
    "Classification",
    "CodeRange",
    "LockAction",
    "LockChange",
    "PolicyError",
    "RecordFacts",
    "RetentionClass",
    "RetentionPolicy",
    "Rule",
    "classification_for",
    "classify",
    "compare",
    "dossier_class",
    "is_expired",
    "load_policy",
    "parse_policy",
    "plan_lock",
    "retain_until",
]
