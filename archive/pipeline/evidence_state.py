"""Where the evidence stage keeps what it has promised: pending runs, timestamped trees, done runs.

Three kinds of small sealed, COMPLIANCE-locked objects in the bucket (the truth), each mirrored in
a private local directory (the fast path and what survives a store outage):

``evidence/v1/pending/<run>.json``  the documents run ``<run>`` archived, written *before* its
                                    catalog manifest and before any TSA request, so no record is
                                    ever catalogued without a promise of evidence
``evidence/v1/trees/<tree>.json``   a timestamped tree: algorithm, root, the RFC 3161 token,
                                    the TSA certificate's fingerprint, the runs and documents it
                                    covers; saved before any evidence record is written, so a
                                    crash after it reuses the token instead of asking again
``evidence/v1/done/<run>``          every evidence record of ``<run>``'s documents is stored

A run is unresolved while it has a pending object and no done object; a tree is open while its
own run (the tree id) has no done object (done markers are written last, the tree's own last of
all). Listing three prefixes answers both, so a lost local directory costs nothing but time.
Keys hold run ids and pseudonymous record keys only, never PHI.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from archive.core.atomic import write_private
from archive.core.errors import ArchiveError
from archive.store import EVIDENCE_PREFIX, SealedStore

PENDING: Final = EVIDENCE_PREFIX + "pending/"
TREES: Final = EVIDENCE_PREFIX + "trees/"
DONE: Final = EVIDENCE_PREFIX + "done/"
MANIFESTS: Final = EVIDENCE_PREFIX + "manifests/"


@dataclass(frozen=True, slots=True)
class Member:
    """One document a tree covers: where its evidence record goes, its SHA-256 (the signed
    PDF's plaintext, or the catalog manifest's bytes) and how long its record stays locked."""

    key: str
    sha256: str
    retain_until: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "sha256": self.sha256,
            "retain_until": self.retain_until.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Member:
        return cls(data["key"], data["sha256"], datetime.fromisoformat(data["retain_until"]))


@dataclass(frozen=True, slots=True)
class TreeIndex:
    """A timestamped tree, everything needed to (re)write its evidence records."""

    tree_id: str
    algorithm: str
    root: str
    gen_time: datetime
    tsa_cert_sha256: str
    covers: tuple[str, ...]  # run ids
    members: tuple[Member, ...]
    token: bytes  # DER ContentInfo

    def encode(self) -> bytes:
        data: dict[str, Any] = {
            "tree_id": self.tree_id,
            **stamp_fields(self.algorithm, self.root, self.gen_time, self.token),
            "tsa_cert_sha256": self.tsa_cert_sha256,
            "covers": list(self.covers),
            "members": [m.to_json() for m in self.members],
        }
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> TreeIndex:
        d = json.loads(data)
        return cls(
            tree_id=d["tree_id"],
            tsa_cert_sha256=d["tsa_cert_sha256"],
            covers=tuple(d["covers"]),
            members=tuple(Member.from_json(m) for m in d["members"]),
            **read_stamp(d),
        )


def stamp_fields(algorithm: str, root: str, gen_time: datetime, token: bytes) -> dict[str, str]:
    """The fields every saved, timestamped tree has, as JSON (the ingest stage's tree index,
    the renewal's and the hash-tree renewal's batches): its hash, root, time and token."""
    return {
        "algorithm": algorithm,
        "root": root,
        "gen_time": gen_time.isoformat(),
        "token": base64.b64encode(token).decode(),
    }


def read_stamp(d: dict[str, Any]) -> dict[str, Any]:
    """:func:`stamp_fields` read back, as keyword arguments of the saved object."""
    return {
        "algorithm": d["algorithm"],
        "root": d["root"],
        "gen_time": datetime.fromisoformat(d["gen_time"]),
        "token": base64.b64decode(d["token"]),
    }


def encode_members(members: Iterable[Member]) -> bytes:
    return json.dumps([m.to_json() for m in members], sort_keys=True).encode()


def decode_members(data: bytes) -> list[Member]:
    return [Member.from_json(m) for m in json.loads(data)]


def longest(members: Iterable[Member]) -> datetime:
    return whole_second(max(m.retain_until for m in members))


def whole_second(moment: datetime) -> datetime:
    """S3 keeps retain-until to the second: round up, so a lock never ends before it should."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


class EvidenceState:
    """The pending/tree/done objects, in the bucket and mirrored under ``directory``."""

    def __init__(self, directory: Path, store: SealedStore) -> None:
        self._dir = directory
        self._store = store

    @property
    def directory(self) -> Path:
        return self._dir

    # -- pending ------------------------------------------------------------------------------

    def save_pending(self, run_id: str, members: list[Member]) -> bool:
        """Local first (it survives a store outage), then the bucket; False when the bucket
        copy could not be written (the next run uploads it)."""
        data = encode_members(members)
        write_private(self._local(PENDING, run_id + ".json"), data)
        return self._upload(PENDING + run_id + ".json", data, longest(members))

    def pending_runs(self, done: set[str]) -> set[str]:
        """Unresolved runs: pending here or in the bucket, and not done. Uploads local pending
        objects the bucket lacks (written while the store was down)."""
        listed = self._names(PENDING, ".json")
        local = {p.name[: -len(".json")] for p in (self._dir / "pending").glob("*.json")}
        for run_id in sorted(local - listed):
            data = self._local(PENDING, run_id + ".json").read_bytes()
            self._upload(PENDING + run_id + ".json", data, longest(decode_members(data)))
        return (listed | local) - done

    def load_pending(self, run_id: str) -> list[Member]:
        return decode_members(self._read(PENDING, run_id + ".json"))

    # -- trees and done -------------------------------------------------------------------------

    def tree_ids(self) -> set[str]:
        return self._names(TREES, ".json")

    def done_runs(self) -> set[str]:
        return self._names(DONE, "")

    def save_tree(self, index: TreeIndex) -> None:
        data = index.encode()
        write_private(self._local(TREES, index.tree_id + ".json"), data)
        self._store.put_locked(
            TREES + index.tree_id + ".json", data, retain_until=longest(index.members)
        )

    def load_tree(self, tree_id: str) -> TreeIndex:
        return TreeIndex.decode(self._read(TREES, tree_id + ".json"))

    def mark_done(self, index: TreeIndex) -> None:
        """Done markers for every run the tree covers, the tree's own run last (it closes the
        tree); then the local pending files go."""
        retain = longest(index.members)
        others = [r for r in index.covers if r != index.tree_id]
        for run_id in [*others, index.tree_id]:
            self._store.put_locked(DONE + run_id, index.tree_id.encode(), retain_until=retain)
        for run_id in index.covers:
            self._local(PENDING, run_id + ".json").unlink(missing_ok=True)

    # -- helpers --------------------------------------------------------------------------------

    def _names(self, prefix: str, suffix: str) -> set[str]:
        names = set()
        for version in self._store.list_versions(prefix):
            name = version.key[len(prefix) :]
            if not version.is_delete_marker and name.endswith(suffix):
                names.add(name[: len(name) - len(suffix)] if suffix else name)
        return names

    def _local(self, prefix: str, name: str) -> Path:
        path = self._dir / prefix[len(EVIDENCE_PREFIX) :] / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _read(self, prefix: str, name: str) -> bytes:
        local = self._local(prefix, name)
        if local.is_file():
            return local.read_bytes()
        head = self._store.latest(prefix + name)
        if head is None:
            raise ArchiveError(f"evidence state {prefix + name} is neither local nor in the bucket")
        data = self._store.get(head.key, version_id=head.version_id)
        write_private(local, data)
        return data

    def _upload(self, key: str, data: bytes, retain_until: datetime) -> bool:
        try:
            self._store.put_locked(key, data, retain_until=retain_until)
        except ArchiveError:
            return False
        return True
