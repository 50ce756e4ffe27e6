"""Hash chains in tests: the chain key unit tests seal HEAD with, and what an insider can do.

An insider who may write the archive's local directories but does not hold the keyring can
chain an event on by hand (and move HEAD, unsealed) or delete the newest segment and put back a
copy of HEAD kept from before it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from archive.audit import canonical
from archive.store import sha256_hex

CHAIN_KEY: Final = b"chain-key-for-unit-tests-only...."


def forge_next_segment(directory: Path, payload: dict[str, Any], *, move_head: bool) -> None:
    """Chain ``payload`` on as a new local segment; with ``move_head`` HEAD names it."""
    segments = sorted((directory / "segments").glob("*.jsonl"))
    last = segments[-1].read_bytes().splitlines()[-1]
    record = {**payload, "seq": json.loads(last)["seq"] + 1, "prev": sha256_hex(last)}
    line = canonical(record)
    (directory / "segments" / f"{len(segments) + 1:010d}.jsonl").write_bytes(line + b"\n")
    if move_head:
        head = {"seq": record["seq"], "sha256": sha256_hex(line)}
        (directory / "HEAD").write_bytes(canonical(head))
