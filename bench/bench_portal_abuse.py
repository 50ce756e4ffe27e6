"""The portal under a password-guessing attack: audit objects written, a colleague signing in,
and other users' pages.

Run by hand: ``python -m bench.bench_portal_abuse [--attempts 1000] [--addresses 10] [--rate 80]
[--checks-at-once 1]``. It starts a throwaway embedded stack, archives a small sample day, adds
accounts and serves the portal in its own process on a free loopback port (uvicorn believes
``X-Forwarded-For`` from loopback, which is how the attack comes from ``--addresses`` distinct
addresses). The attackers run in a process of their own too, so the officer's client does not
wait for their interpreter lock; they still share the machine's cores with the portal, so they
send at a fixed ``--rate`` (attempts per second over all addresses; 0: as fast as answers come)
rather than take whatever CPU they can. Then, over real HTTP:

- baseline: a records officer's searches (``POST /search``: authenticate, index, one audit event)
  with nobody attacking; p50/p95;
- attack: ``--attempts`` wrong passwords from ``--addresses`` threads, one address each, names
  cycling through real accounts and guesses, while the officer searches again until the attack
  ends; the attack's rate and answers (401 checked, 429 throttled or refused unhashed);
- behind the first attacked address, a colleague whose account was not guessed signs in with the
  right password, and one whose account was guessed is told to wait (the per-account limit);
- audit segments (each one sealed object locked in the bucket) written during the attack and
  after the portal stopped (the open window of counted refusals is written at shutdown).

``--checks-at-once`` is how many password checks the portal runs at once (its default, 1, with a
queue of 16 beyond which it answers 429 unhashed); a large value with ``--queue 0`` gives back
the portal before that bound, for comparison on the same machine state.

Nothing is asserted: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import re
import statistics
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn

from bench.bench_export import archive_day
from bench.common import table, throwaway_stack
from infra.ports import free_port_block
from infra.settings import AppSettings as Settings
from portal import PasswordChecks, create_app
from retrieval import Retrieval, Role

PASSWORD = "bench password 123"  # noqa: S105 - throwaway accounts in a throwaway stack
OFFICER, COLLEAGUE, GUESSED = "ro.bench", "insp.bench", "insp.guessed"


def accounts(settings: Settings) -> None:
    r = Retrieval.open(settings)
    now = datetime.now(UTC)
    r.add_user(None, "admin.bench", Role.ADMIN, PASSWORD, now=now)
    admin = r.sign_in("admin.bench", PASSWORD, now=now)
    r.add_user(admin, OFFICER, Role.RECORDS_OFFICER, PASSWORD, now=now)
    r.add_user(admin, COLLEAGUE, Role.INSPECTOR, PASSWORD, now=now)
    r.add_user(admin, GUESSED, Role.INSPECTOR, PASSWORD, now=now)
    r.index.close()


def segments(settings: Settings) -> int:
    return len(list(Path(settings.audit_dir, "segments").iterdir()))


def searches(client: httpx.Client, csrf: str, encounter: str, n: int) -> list[float]:
    """Milliseconds of ``n`` searches in a row."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        page = client.post("/search", data={"csrf": csrf, "encounter": encounter})
        times.append((time.perf_counter() - started) * 1000)
        assert page.status_code == 200, page.status_code
    return times


def attack(
    url: str,
    attempts: int,
    addresses: int,
    rate: float,
    out: multiprocessing.queues.Queue[tuple[dict[int, int], float]],
    going: threading.Event,
) -> None:
    """Wrong passwords from ``addresses`` threads, ``rate`` a second in all (0: no pause); sets
    ``going`` as they start, puts the answers and the seconds it took on ``out``. Runs in a
    process of its own."""
    answers: Counter[int] = Counter()
    lock = threading.Lock()
    names = [OFFICER, GUESSED, "admin.bench", "root", "admin", "bs.hoa", "guest"]
    every = addresses / rate if rate else 0.0  # seconds between one address's attempts

    def one_address(a: int) -> None:
        headers = {"x-forwarded-for": f"10.66.0.{a + 1}"}
        with httpx.Client(base_url=url, headers=headers, timeout=600) as c:
            due = started + a * every / addresses  # the addresses' sends interleave
            for i in range(attempts // addresses):
                time.sleep(max(0.0, due - time.perf_counter()))
                due += every
                data = {"username": f"{names[i % len(names)]}{i // 50 or ''}", "password": "x" * 12}
                code = c.post("/login", data=data).status_code
                with lock:
                    answers[code] += 1

    threads = [threading.Thread(target=one_address, args=(a,)) for a in range(addresses)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    going.set()
    for t in threads:
        t.join()
    out.put((dict(answers), time.perf_counter() - started))


def p(times: list[float], q: int) -> str:
    return f"{statistics.quantiles(times, n=100)[q - 1]:.0f} ms"


def serve(settings: Settings, port: int, running: int, waiting: int) -> None:
    """The portal in this (spawned) process's main thread, as ``emr-archive portal`` serves it:
    SIGTERM then runs its shutdown, which writes the open window of refusals."""
    checks = PasswordChecks(running=running, waiting=waiting)
    app = create_app(settings, password_checks=checks)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def sign_in_from(url: str, address: str, user: str) -> tuple[int, float]:
    with httpx.Client(base_url=url, headers={"x-forwarded-for": address}, timeout=600) as c:
        started = time.perf_counter()
        code = c.post("/login", data={"username": user, "password": PASSWORD}).status_code
        return code, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--addresses", type=int, default=10)
    parser.add_argument("--searches", type=int, default=60)
    parser.add_argument("--rate", type=float, default=80.0, help="attempts/s in all; 0: flat out")
    parser.add_argument("--checks-at-once", type=int, default=1)
    parser.add_argument("--queue", type=int, default=16, help="checks waiting beyond those")
    args = parser.parse_args()
    with throwaway_stack(full=True) as settings:
        archive_day(settings, 12, documents=1, patients=0)
        accounts(settings)
        encounter = Retrieval.open(settings).catalog.rows().to_pylist()[0]["encounter_id"]
        (port,) = free_port_block(1)
        url = f"http://127.0.0.1:{port}"
        spawn = multiprocessing.get_context("spawn")
        gate = (args.checks_at_once, args.queue)
        server = spawn.Process(target=serve, args=(settings, port, *gate))
        server.start()
        try:
            wait_up(url)
            with httpx.Client(base_url=url, timeout=600) as officer:
                officer.post("/login", data={"username": OFFICER, "password": PASSWORD})
                found = re.search(r'name="csrf" value="([0-9a-f]+)"', officer.get("/search").text)
                assert found
                quiet = searches(officer, found.group(1), encounter, args.searches)
                before = segments(settings)
                out: multiprocessing.queues.Queue[tuple[dict[int, int], float]] = spawn.Queue()
                going = spawn.Event()
                attack_args = (url, args.attempts, args.addresses, args.rate, out, going)
                attacker = spawn.Process(target=attack, args=attack_args)
                attacker.start()
                going.wait(timeout=120)
                under: list[float] = []  # searches while the attack lasts, as many as fit
                while attacker.is_alive() and out.empty():
                    under += searches(officer, found.group(1), encounter, 1)
                got, seconds = out.get(timeout=600)
                answers = Counter(got)
                attacker.join()
                during = segments(settings) - before - len(under)  # minus the searches' own
            colleague = sign_in_from(url, "10.66.0.1", COLLEAGUE)
            guessed = sign_in_from(url, "10.66.0.1", GUESSED)
            running = segments(settings)
        finally:
            server.terminate()  # SIGTERM: uvicorn shuts down, the open window is written
            server.join(timeout=120)
        at_shutdown = segments(settings) - running
    total = sum(answers.values())
    rows = [
        ("measure", "baseline (no attack)", "under attack"),
        ("officer's search p50", p(quiet, 50), p(under, 50)),
        ("officer's search p95", p(quiet, 95), p(under, 95)),
        ("officer's searches", str(len(quiet)), f"{len(under)} while attacked"),
        ("checks at once + queue", "-", f"{args.checks_at_once} + {args.queue}"),
        (
            "bad logins",
            "-",
            f"{total} from {args.addresses} addresses in {seconds:.1f} s "
            f"({total / seconds:.0f}/s, asked {args.rate or 'max'}): "
            + ", ".join(f"{n}x {code}" for code, n in sorted(answers.items())),
        ),
        ("audit segments for refusals", "-", f"{during} while running, {at_shutdown} at shutdown"),
        ("colleague behind 10.66.0.1", "-", f"{colleague[0]} in {colleague[1]:.0f} ms"),
        ("guessed account, same address", "-", f"{guessed[0]} in {guessed[1]:.0f} ms"),
    ]
    print(table(rows))


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the portal did not start")


if __name__ == "__main__":
    main()
