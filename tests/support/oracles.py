"""The field's reference validators, veraPDF and EU DSS, driven from pytest (no tests here).

tests/oracles/ is a small Maven project (one Java class) that `make oracles` compiles against
Maven Central artifacts cached in ~/.m2; :func:`verapdf` and :func:`dss` run it once per batch of
files and parse its one JSON line per file. A stale or missing build is rebuilt here when Maven
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


def _run(args: Sequence[str], files: Sequence[Path]) -> dict[Path, dict[str, Any]]:
    java = shutil.which("java")
    if java is None:
        raise OracleError("java is missing: run `make oracles` (installs a JDK)")
    cmd = [java, "-cp", ensure_built(), MAIN, *args, *(str(f) for f in files)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise OracleError(f"{args[0]} exited {done.returncode}:\n{done.stderr[-4000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    verdicts = {Path(v["file"]): v for v in lines}
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
    return {
        path: DssVerdict(
            signatures=tuple(
                DssSignature(
                    indication=s["indication"],
                    sub_indication=s["subIndication"],
                    level=s["signatureLevel"],
                    errors=tuple(s["errors"]),
                    warnings=tuple(s["warnings"]),
                    timestamps=_timestamps(s["timestamps"]),
                )
                for s in v.get("signatures", ())
            ),
            timestamps=_timestamps(v.get("timestamps", ())),
            error=v.get("error"),
        )
        for path, v in _run(["dss", str(trust_anchor)], files).items()
    }


def _timestamps(raw: Sequence[dict[str, Any]]) -> tuple[DssTimestamp, ...]:
    return tuple(DssTimestamp(t["type"], t["indication"], t["subIndication"]) for t in raw)
