"""Time from request to finished export, in-process and through the portal over real HTTP.

Run by hand: ``python -m bench.bench_export [--documents 5] [--repeat 5]``. It starts a
throwaway embedded stack (SeaweedFS + PKI service) and archives a sample day in which some
patients are made to have ``--documents`` encounters each (the sample gives at most two or
three per patient: the merge points the other encounters' resources at one patient, so a
patient's dossier has exactly ``--documents`` documents). Then, as a records officer:

- service (in-process): :meth:`retrieval.service.Retrieval.export` of one encounter and of one
  patient, and the baseline: ``export_dossier`` of ``--documents`` catalog rows in one bag (no
  authorisation, index or audit). Each export: GET + unseal, the full verification checks per
  document (signature B-LTA offline, PDF/A, embedded data, lock), BagIt bag with sha256 +
  sha512 manifests, zip (and for ``Retrieval.export`` authorise, index look-up, audit event).
- portal (HTTP): ``portal.app.create_app`` served by uvicorn on a free loopback port, signed in
  with httpx; the time of ``POST /export`` from the request until the whole zip is received, for
  one encounter, for one patient (the sealed patient field of a records officer's patient
  search), and ``--documents`` one-encounter requests in a row. The first portal export pays for
  the export worker's start (spawn, imports, ``Retrieval.open``): it is reported as "cold".

Peak RSS per row is the high-water mark during that row's exports (``/proc/<pid>/clear_refs``
resets it): the bench process (which serves the portal too and still holds the in-process
phase's memory) and, for the portal, its export worker. Nothing is asserted: the machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import math
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from archive.catalog import Catalog, CatalogRow
from archive.pipeline import ArchiveRun, RunOptions, window_for
from bench.bench_verify import DAY
from bench.common import peak_rss_mib, table, throwaway_stack
from infra.sample.generator import MANIFEST_NAME, write_sample_export
from infra.settings import AppSettings as Settings
from portal import create_app, in_thread
from retention import PolicyClassifier
from retrieval import Principal, Retrieval, Role, export_dossier, validate_zip
from verification.config import HoldSet

PASSWORD = "bench password 123"  # noqa: S105 - a throwaway account in a throwaway stack
OFFICER = "ro.bench"


# --- the sample day ------------------------------------------------------------------------------


def archive_day(
    settings: Settings,
    encounters: int,
    *,
    documents: int,
    patients: int,
) -> tuple[int, list[str]]:
    """Archive a sample day; returns the records archived and the clear ids of the patients
    given ``documents`` encounters each (as many as the sample allows, up to ``patients``)."""
    export = settings.exports_dir / "bench"
    summary = write_sample_export(export, encounters=encounters, seed=5, day=DAY, bad_share=0.0)
    merged = merge_patients(export, summary.in_window, documents=documents, patients=patients)
    window = window_for(settings.archive.timezone, since=DAY, until=None, now=datetime.now(UTC))
    options = RunOptions.create(settings, window=window, source=export, now=datetime.now(UTC))
    with ArchiveRun.start(
        settings, options, classifier=PolicyClassifier.from_settings(settings)
    ) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        archived = run.finish().archived
    return archived, merged


def merge_patients(
    export: Path,
    in_window: Sequence[str],
    *,
    documents: int,
    patients: int,
) -> list[str]:
    """Give up to ``patients`` patients ``documents`` in-window encounters each.

    Only encounters whose living patient has no other encounter are used; the first of each
    group keeps its patient and the others' resources are pointed at it (same-length ids, so
    the manifest stays true). The other patients' lines are left unreferenced: not collected."""
    subject: dict[str, str] = {}
    for line in (export / "Encounter.ndjson").read_text(encoding="utf-8").splitlines():
        encounter = json.loads(line)
        subject[encounter["id"]] = encounter["subject"]["reference"].removeprefix("Patient/")
    deceased = set()
    for line in (export / "Patient.ndjson").read_text(encoding="utf-8").splitlines():
        patient = json.loads(line)
        if patient.get("deceasedDateTime") or patient.get("deceasedBoolean") is True:
            deceased.add(patient["id"])
    visits = Counter(subject.values())
    eligible = [
        e for e in sorted(in_window) if visits[subject[e]] == 1 and subject[e] not in deceased
    ]
    groups = [eligible[i : i + documents] for i in range(0, len(eligible), documents)]
    groups = [g for g in groups if len(g) == documents][:patients]
    moved = {subject[e]: subject[g[0]] for g in groups for e in g[1:]}
    for path in sorted(export.glob("*.ndjson")):
        if path.name == "Patient.ndjson" or path.name == MANIFEST_NAME:
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in moved.items():
            text = text.replace(f'"Patient/{old}"', f'"Patient/{new}"')
        path.write_text(text, encoding="utf-8")
    return [subject[g[0]] for g in groups]


# --- measurements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    path: str
    export: str
    documents: int
    seconds: list[float]
    rss: str

    def row(self) -> tuple[str, ...]:
        """The row under :data:`HEADER`."""
        s, p50 = self.seconds, statistics.median(self.seconds)
        times = (f"{t:.2f}" for t in (p50, min(s), max(s), p50 / self.documents))
        return (self.path, self.export, str(self.documents), str(len(s)), *times, self.rss)


TIMES = ("p50 s", "min s", "max s", "s/document")
HEADER = ("path", "export", "documents", "n", *TIMES, "peak RSS MiB")


def _status_mib(pid: int | str, field: str) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _rss_reset(pid: int | str) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _export_workers() -> list[int]:
    """This process's children started by a spawn ProcessPoolExecutor (the export workers)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
            if ppid == me and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return sorted(found)


def timed(
    fn: Callable[[int], list[Path]],
    n: int,
    *,
    workers: bool = False,
) -> tuple[list[float], str]:
    """``n`` calls of ``fn(i)``: their wall times and the peak RSS while they ran. The zips
    each call returns are validated as BagIt bags outside the timing."""
    _rss_reset("self")
    for pid in _export_workers() if workers else []:
        _rss_reset(pid)
    seconds = []
    for i in range(n):
        begin = time.perf_counter()
        zips = fn(i)
        seconds.append(time.perf_counter() - begin)
        for path in zips:
            validate_zip(path)
    rss = f"{_status_mib('self', 'VmHWM'):.0f}"
    if workers:
        peaks = "+".join(f"{_status_mib(p, 'VmHWM'):.0f}" for p in _export_workers()) or "?"
        rss = f"{rss} web, {peaks} worker"
    return seconds, rss


# --- in-process ----------------------------------------------------------------------------------


def service_phase(
    settings: Settings,
    rows: list[CatalogRow],
    patients: list[str],
    *,
    documents: int,
    repeat: int,
    out: Path,
) -> list[Measured]:
    r = Retrieval.open(settings)
    try:
        officer = _accounts(r)
        r.refresh()
        got: list[Measured] = []
        path = "service (in-process)"

        def encounter(i: int) -> list[Path]:  # one encounter through the API: the CLI's `retrieve`
            result = r.export(
                officer, out_dir=out, now=datetime.now(UTC), encounter_id=rows[i].encounter_id
            )
            return [result.path]

        seconds, rss = timed(encounter, repeat)
        got.append(Measured(path, "Retrieval.export, 1 encounter", 1, seconds, rss))
        env = r._env_factory(HoldSet.of(r.register.held_encounters()))

        def baseline(i: int) -> list[Path]:  # n documents in one bag, no authorise/index/audit
            chosen = rows[i * documents : (i + 1) * documents]
            result = export_dossier(
                chosen,
                env=env,
                out_dir=out,
                label=f"bench-{i}",
                now=datetime.now(UTC),
                context={"exported_by": "bench"},
            )
            return [result.path]

        seconds, rss = timed(baseline, repeat)
        got.append(
            Measured(path, f"export_dossier, {documents} rows (baseline)", documents, seconds, rss)
        )
        if patients:

            def patient(i: int) -> list[Path]:
                result = r.export(
                    officer,
                    out_dir=out,
                    now=datetime.now(UTC),
                    patient_pseudonym=r.pseudonym(patients[i]),
                )
                if len(result.documents) != documents:
                    raise RuntimeError(f"{len(result.documents)} documents")
                return [result.path]

            seconds, rss = timed(patient, len(patients))
            got.append(Measured(path, "Retrieval.export, 1 patient", documents, seconds, rss))
        return got
    finally:
        r.index.close()


def _accounts(r: Retrieval) -> Principal:
    now = datetime.now(UTC)
    r.add_user(None, "admin.bench", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.bench", PASSWORD, now=now)
    r.add_user(admin, OFFICER, Role.RECORDS_OFFICER, PASSWORD, now=now)
    return r.sign_in(OFFICER, PASSWORD, now=now)


# --- through the portal --------------------------------------------------------------------------


def _field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page)
    if not match:
        raise RuntimeError(f"no {name} field on the page")
    return html.unescape(match.group(1))


def portal_phase(
    settings: Settings,
    rows: list[CatalogRow],
    patients: list[str],
    *,
    documents: int,
    repeat: int,
    out: Path,
) -> list[Measured]:
    got: list[Measured] = []
    path = "portal (HTTP)"
    with (
        in_thread(create_app(settings)) as url,
        httpx.Client(base_url=url, follow_redirects=False, timeout=600) as client,
    ):
        begin = time.perf_counter()
        signed = client.post("/login", data={"username": OFFICER, "password": PASSWORD})
        if signed.status_code != 303:
            raise RuntimeError(f"sign-in answered {signed.status_code}")
        csrf = _field(client.get("/search").text, "csrf")
        print(f"portal: signed in and read the CSRF token in {time.perf_counter() - begin:.2f} s")

        def export(form: dict[str, str], expected: int) -> list[Path]:
            response = client.post("/export", data={"csrf": csrf, **form})
            if response.status_code != 200:
                raise RuntimeError(f"export answered {response.status_code}")
            if int(response.headers["x-dossier-documents"]) != expected:
                raise RuntimeError(f"{response.headers['x-dossier-documents']} documents")
            saved = out / f"{len(list(out.iterdir()))}.zip"
            saved.write_bytes(response.content)  # saved, as a client would
            return [saved]

        first = rows[-1].encounter_id  # not among the warm ones below
        seconds, rss = timed(lambda _: export({"encounter": first}, 1), 1, workers=True)
        got.append(
            Measured(f"{path}, cold", "POST /export, 1 encounter (+ worker start)", 1, seconds, rss)
        )
        seconds, rss = timed(
            lambda i: export({"encounter": rows[i].encounter_id}, 1), repeat, workers=True
        )
        got.append(Measured(path, "POST /export, 1 encounter", 1, seconds, rss))
        if patients:
            sealed, searched = [], []
            for patient in patients:
                begin = time.perf_counter()
                page = client.post("/search", data={"csrf": csrf, "patient": patient})
                searched.append(time.perf_counter() - begin)
                sealed.append(_field(page.text, "patient"))
            print(
                f"portal: patient search p50 {statistics.median(searched):.3f} s "
                f"(n={len(searched)})"
            )
            seconds, rss = timed(
                lambda i: export({"patient": sealed[i]}, documents), len(sealed), workers=True
            )
            got.append(Measured(path, "POST /export, 1 patient", documents, seconds, rss))

        def in_a_row(i: int) -> list[Path]:
            chosen = rows[i * documents : (i + 1) * documents]
            return [p for row in chosen for p in export({"encounter": row.encounter_id}, 1)]

        seconds, rss = timed(in_a_row, repeat, workers=True)
        got.append(
            Measured(path, f"{documents} x POST /export, 1 encounter each", documents, seconds, rss)
        )
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--documents", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    documents, repeat = args.documents, args.repeat
    # ~70 % of the sample's encounters can join a merged patient: enough for 2 x repeat patients
    encounters = max(40, math.ceil(2 * repeat * documents / 0.7) + 10)
    with throwaway_stack(full=True) as settings, tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        archived, patients = archive_day(
            settings, encounters, documents=documents, patients=2 * repeat
        )
        print(
            f"archived {archived} of {encounters} sample encounters in "
            f"{time.perf_counter() - begin:.1f} s; {len(patients)} patients with "
            f"{documents} encounters each"
        )
        rows = [
            CatalogRow.from_dict(x) for x in Catalog.open(settings.catalog_dir).rows().to_pylist()
        ]
        repeat = min(repeat, (len(rows) - 1) // documents)
        half = len(patients) // 2
        (out := Path(tmp) / "service").mkdir()
        measured = service_phase(
            settings, rows, patients[:half], documents=documents, repeat=repeat, out=out
        )
        (out := Path(tmp) / "portal").mkdir()
        measured += portal_phase(
            settings, rows, patients[half:], documents=documents, repeat=repeat, out=out
        )
    print()
    print(table([HEADER, *(m.row() for m in measured)]))
    if not patients:
        print(f"(no patient with {documents} encounters could be made: no patient rows)")
    print(f"\npeak RSS of the bench process over the whole run: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
