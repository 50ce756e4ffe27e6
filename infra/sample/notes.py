"""The hospital-course note (LOINC 8648-8): one to three printed pages of Vietnamese free text.

Takes the encounter's scenario, principal diagnosis, outcome and dates; returns the note text.
It is the longest text in a record and what makes the rendered PDFs realistic in size and
layout (line breaking, page breaks, Vietnamese diacritics), so its length is drawn, not fixed.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from infra.sample import tables
from infra.sample.tables import Scenario


def hospital_course(
    rng: random.Random,
    *,
    scenario: Scenario,
    principal: dict[str, Any],
    surgery: bool,
    outcome: tuple[str, str] | None,
    start: datetime,
    until: datetime,
) -> str:
    """The note of an encounter from ``start`` to ``until``; ``principal`` is its ICD-10 coding."""
    target = rng.randint(2600, 8800)  # about 1 to 3 printed pages
    parts = [
        rng.choice(tables.NOTE_OPENINGS).format(
            complaint=rng.choice(scenario.complaint), days=rng.randint(1, 7)
        ),
        rng.choice(tables.NOTE_HISTORY),
        rng.choice(tables.NOTE_EXAM).format(**_vitals_words(rng)),
        f"Chẩn đoán: {principal['display']} ({principal['code']}).",
        "Diễn biến điều trị:",
    ]
    entries = _progress(rng, surgery=surgery, size=sum(len(p) + 1 for p in parts), target=target)
    step = (until - start) / max(1, len(entries) - 1)
    parts += [f"- {start + step * i:%d/%m/%Y %H:%M}: {e}" for i, e in enumerate(entries)]
    parts.append(_ending(rng, scenario=scenario, outcome=outcome, until=until))
    return "\n".join(parts)


def _progress(rng: random.Random, *, surgery: bool, size: int, target: int) -> list[str]:
    """Daily progress entries of 4-6 sentences until the note reaches ``target`` characters."""
    pool = [s for s in tables.NOTE_PROGRESS if surgery or "mổ" not in s]
    entries: list[str] = []
    while size < target:
        sentences = rng.sample(pool, rng.randint(4, 6))
        if any("{" in s for s in sentences):
            words = _vitals_words(rng)
            sentences = [s.format(**words) for s in sentences]
        entries.append(" ".join(sentences))
        size += len(entries[-1]) + 20
    return entries


def _ending(
    rng: random.Random, *, scenario: Scenario, outcome: tuple[str, str] | None, until: datetime
) -> str:
    if outcome is None:
        return "Hiện bệnh nhân đang tiếp tục điều trị tại khoa."
    if outcome[1] == "exp":
        return tables.NOTE_DEATH.format(time=f"{until:%H giờ %M} ngày {until:%d/%m/%Y}")
    if outcome[1] == "other-hcf":
        return tables.NOTE_TRANSFER
    department = tables.DEPARTMENTS[scenario.department]
    return rng.choice(tables.NOTE_DISCHARGE).format(department=department)


def _vitals_words(rng: random.Random) -> dict[str, str]:
    return {
        "hr": str(rng.randint(62, 110)),
        "sys": str(rng.randint(100, 160)),
        "dia": str(rng.randint(60, 95)),
        "temp": f"{rng.uniform(36.3, 38.9):.1f}".replace(".", ","),
        "glu": f"{rng.uniform(4.5, 11.0):.1f}".replace(".", ","),
    }
