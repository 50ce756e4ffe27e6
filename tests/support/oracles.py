"""The field's reference validators, veraPDF and EU DSS, driven from pytest (no tests here).

tests/oracles/ is a small Maven project (one Java class) that `make oracles` compiles against
Maven Central artifacts cached in ~/.m2; :func:`verapdf`, :func:`dss`, :func:`dss_with_evidence`
and :func:`ers` run it once per batch of files and parse its one JSON line per file (or per
document and evidence record pair). A stale or missing build is rebuilt here when Maven
is on the PATH and is otherwise a failure that says what to run: a reference check that is
silently skipped would be a check that cannot fail.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

ORACLES = REPO / "tests" / "oracles"
TARGET = ORACLES / "target"
MAIN = "emrarchive.oracles.Oracles"


class OracleError(AssertionError):
    """The oracle could not be built or run: a failure of the test, never a skip."""


@dataclass(frozen=True)
class PdfaVerdict:
    """veraPDF's verdict under the PDF/A-3B profile."""

    compliant: bool
    failed: tuple[str, ...]  # "clause-test (count): description"
    error: str | None = None


@dataclass(frozen=True)
class DssTimestamp:
    type: str  # SIGNATURE_TIMESTAMP, DOCUMENT_TIMESTAMP (PAdES B-LTA), ...
    indication: str
    sub_indication: str | None


@dataclass(frozen=True)
class DssSignature:
    indication: str
    sub_indication: str | None
    level: str  # "PAdES-BASELINE-LTA", ...
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    timestamps: tuple[DssTimestamp, ...]
    evidence_records: tuple[tuple[str, str | None], ...] = ()  # (indication, sub-indication)
    best_signature_time: str | None = None


@dataclass(frozen=True)
class DssVerdict:
    """DSS's simple report: every signature, with its timestamps, and timestamps of no one."""

    signatures: tuple[DssSignature, ...]
    timestamps: tuple[DssTimestamp, ...]
    error: str | None = None


def stamp() -> Path:
    """The build stamp for the current sources; the Makefile's `oracles` target computes the same
    name (sha256 of the pom and the Java sources, in path order)."""
    sources = [ORACLES / "pom.xml", *sorted((ORACLES / "src").rglob("*.java"))]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    return TARGET / f".built-{digest[:16]}"


def ensure_built() -> str:
    """The class path to run the oracles with, building them first if the sources changed."""
    if not stamp().exists():
        mvn = shutil.which("mvn")
        if mvn is None:
            raise OracleError(
                "the reference validators are not built and Maven is missing: run `make oracles`"
            )
        done = subprocess.run(
            [mvn, "-q", "-B", "compile"], cwd=ORACLES, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise OracleError(f"building tests/oracles failed:\n{done.stdout}\n{done.stderr}")
        for old in TARGET.glob(".built-*"):
            old.unlink()
        stamp().touch()
    classpath = (TARGET / "classpath.txt").read_text(encoding="utf-8").strip()
    return f"{TARGET / 'classes'}:{classpath}"


def _lines(args: Sequence[str]) -> list[dict[str, Any]]:
    java = shutil.which("java")
    if java is None:
        raise OracleError("java is missing: run `make oracles` (installs a JDK)")
    cmd = [java, "-cp", ensure_built(), MAIN, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise OracleError(f"{args[0]} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _run(args: Sequence[str], files: Sequence[Path]) -> dict[Path, dict[str, Any]]:
    verdicts = {Path(v["file"]): v for v in _lines([*args, *(str(f) for f in files)])}
    if set(verdicts) != {Path(f) for f in files}:
        raise OracleError(f"{args[0]} judged {sorted(verdicts)}, not {sorted(files)}")
    return verdicts


def verapdf(files: Sequence[Path]) -> dict[Path, PdfaVerdict]:
    """veraPDF (PDF/A-3B, whatever the file claims) on every file, in one JVM."""
    return {
        path: PdfaVerdict(
            compliant=bool(v.get("compliant", False)),
            failed=tuple(v.get("failed", ())),
            error=v.get("error"),
        )
        for path, v in _run(["verapdf"], files).items()
    }


def dss(files: Sequence[Path], *, trust_anchor: Path) -> dict[Path, DssVerdict]:
    """DSS, default policy, ``trust_anchor`` (PEM) the only anchor, offline, in one JVM."""
    return {path: _dss_verdict(v) for path, v in _run(["dss", str(trust_anchor)], files).items()}


def dss_with_evidence(
    pairs: Sequence[tuple[Path, Path]], *, trust_anchor: Path, at: datetime
) -> dict[Path, DssVerdict]:
    """DSS on each signed PDF with its detached evidence record (the pair's second path), the
    validation time set to ``at``: each signature's verdict lists the records DSS attached."""
    args = ["dss-er", str(trust_anchor), _instant(at), *(str(p) for pair in pairs for p in pair)]
    verdicts = {Path(v["file"]): _dss_verdict(v) for v in _lines(args)}
    if set(verdicts) != {pdf for pdf, _ in pairs}:
        raise OracleError(f"dss-er judged {sorted(verdicts)}, not {[p for p, _ in pairs]}")
    return verdicts


def _dss_verdict(v: dict[str, Any]) -> DssVerdict:
    return DssVerdict(
        signatures=tuple(
            DssSignature(
                indication=s["indication"],
                sub_indication=s["subIndication"],
                level=s["signatureLevel"],
                errors=tuple(s["errors"]),
                warnings=tuple(s["warnings"]),
                timestamps=_timestamps(s["timestamps"]),
                evidence_records=tuple(
                    (e["indication"], e["subIndication"]) for e in s.get("evidenceRecords", ())
                ),
                best_signature_time=s.get("bestSignatureTime"),
            )
            for s in v.get("signatures", ())
        ),
        timestamps=_timestamps(v.get("timestamps", ())),
        error=v.get("error"),
    )


@dataclass(frozen=True)
class BcEvidence:
    """Bouncy Castle's ``tsp.ers`` on every prefix of the record's chains (it judges only the
    last chain of a record), and every token on its own."""

    present: bool  # the document is in each chain's first ATS and leads to its imprint
    chained: bool  # each chain's renewals cover its earlier ATSs, its last token verifies
    signed: bool  # every token's CMS signature and TSA certificate (at its genTime)
    trusted: bool  # every TSA certificate has a path to the anchors at its genTime
    chains: int
    tokens: int
    failures: tuple[str, ...]
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None and self.present and self.chained and self.signed and self.trusted


@dataclass(frozen=True)
class DssEvidence:
    """DSS's evidence-record validator: the simple report's verdict and what it saw covered."""

    indication: str | None
    sub_indication: str | None
    covered: bool  # every archive-object digest of the record matched the document, and one did
    structurally_valid: bool
    timestamps: tuple[tuple[str, str | None, bool], ...]  # (indication, sub-indication, intact)
    errors: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class ErsVerdict:
    bc: BcEvidence
    dss: DssEvidence


def ers(
    pairs: Sequence[tuple[Path, Path]], *, trust_anchor: Path, at: datetime | None = None
) -> dict[tuple[Path, Path], ErsVerdict]:
    """Bouncy Castle and DSS on each (document, evidence record) pair, in one JVM: the record
    judged against the detached document at ``at`` (now when None), ``trust_anchor`` (PEM) the
    only anchors for the TSA certificates, offline."""
    moment = "now" if at is None else _instant(at)
    args = ["ers", str(trust_anchor), moment, *(str(p) for pair in pairs for p in pair)]
    verdicts = {
        (Path(v["document"]), Path(v["file"])): ErsVerdict(_bc(v["bc"]), _dss_evidence(v["dss"]))
        for v in _lines(args)
    }
    if set(verdicts) != {(Path(d), Path(e)) for d, e in pairs}:
        raise OracleError(f"ers judged {sorted(verdicts)}, not {sorted(pairs)}")
    return verdicts


def _bc(v: dict[str, Any]) -> BcEvidence:
    return BcEvidence(
        present=bool(v.get("present", False)),
        chained=bool(v.get("chained", False)),
        signed=bool(v.get("signed", False)),
        trusted=bool(v.get("trusted", False)),
        chains=int(v.get("chains", 0)),
        tokens=int(v.get("tokens", 0)),
        failures=tuple(v.get("failures", ())),
        error=v.get("error"),
    )


def _dss_evidence(v: dict[str, Any]) -> DssEvidence:
    return DssEvidence(
        indication=v.get("indication"),
        sub_indication=v.get("subIndication"),
        covered=bool(v.get("covered", False)),
        structurally_valid=bool(v.get("structurallyValid", False)),
        timestamps=tuple(
            (t["indication"], t["subIndication"], bool(t["intact"]))
            for t in v.get("timestamps", ())
        ),
        errors=tuple(v.get("errors", ())),
        error=v.get("error"),
    )


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("an oracle's validation time must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamps(raw: Sequence[dict[str, Any]]) -> tuple[DssTimestamp, ...]:
    return tuple(DssTimestamp(t["type"], t["indication"], t["subIndication"]) for t in raw)
