"""The one random stream and the one running number every part of the sample draws from.

Patients, encounters, clinical content and planted faults all draw from a single
``random.Random`` in a fixed order, and that order *is* the sample: the same seed gives the same
bytes only as long as every draw happens in the same sequence. Keeping the stream (and the
running number behind patient, record and episode numbers) in one object passed to each part
makes the sharing explicit instead of hiding it in a large class.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass


@dataclass(slots=True)
class Dice:
    rng: random.Random
    seq: int = 0  # the last running number handed out

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq
