"""Loading a policy file: bytes in, a checked :class:`RetentionPolicy` out, or one refusal.

Loading refuses, naming the line: a file that is not UTF-8, TOML syntax errors, anything the
:class:`~retention.policy.reader.Reader` refuses (unknown keys, a missing or non-integer
``version``, years that are not a whole number from 1 to 100 (``permanent = true`` says permanent),
a lock horizon beyond 200 years, a rule naming an unknown class, a malformed code or range), a
class declared twice, and **overlapping rules**, checked here because only the whole set of rules
shows them: two matchers of the same kind (in any two rules, or twice in one rule) that can match a
common value. For ICD-10 and ICD-9-CM that means ranges that intersect, including identical and
nested ones; for the listed codes it means the same value twice; for the ``deceased`` /
``incident_file`` flags it means two rules setting the same flag. Nesting is refused even between
classes of different periods: the longest class always wins, so a narrower rule could only raise
its codes, never lower them.

The only file read is the policy itself; ``None`` loads the shipped ``retention/policy.toml``,
found as a resource of the ``retention`` package so it works from a wheel as from a checkout.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib import resources
from itertools import combinations
from pathlib import Path
from typing import Final

from retention.errors import PolicyError
from retention.policy.locator import Locator
from retention.policy.model import MATCHERS, CodeRange, RetentionPolicy, Rule
from retention.policy.reader import Reader

SHIPPED_POLICY: Final = "policy.toml"


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
    where = Locator(text, source)
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        found = re.search(r"at line (\d+)", str(e))
        raise PolicyError(
            f"not valid TOML ({e}); fix the syntax",
            source=source,
            line=int(found.group(1)) if found else None,
        ) from e
    policy = Reader(tree, where).policy(hashlib.sha256(raw).hexdigest())
    _check_overlaps(policy.rules, where)
    return policy


def _check_overlaps(rules: tuple[Rule, ...], where: Locator) -> None:
    """Refuse two matchers of one kind that can match a common value (see the module doc)."""
    items: list[tuple[int, Rule, str, str, object]] = []
    for rule in rules:
        path = ("rules", rule.rule_id)
        for kind in MATCHERS:
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
