"""The portal's defences against abuse, without a stack: the sign-in throttle (per account, per
address, global), refused sign-ins counted per source and window, the form key's server secret
and the Secure-cookie default."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta

import pytest

from portal import AuthThrottle, Caller, PasswordChecks, PortalSettings, TooManyAttemptsError
from retrieval import Principal, Role
from retrieval.service.refusals import RefusalTally

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_throttle_locks_a_guessed_account_everywhere_but_not_its_neighbours() -> None:
    throttle = AuthThrottle(account_limit=3, address_limit=100, global_limit=100)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        throttle.check(address, "ro.binh")
        throttle.failed(address, "ro.binh")
    with pytest.raises(TooManyAttemptsError):
        throttle.check("10.0.0.4", "ro.binh")  # distributed guessing of one account
    throttle.check("10.0.0.1", "insp.an")


def test_nat_address_over_its_budget_still_lets_a_colleague_sign_in() -> None:
    """Reproduces #11 item 8: one hospital NAT address, one attacker behind it, and the per-address
    throttle locked every valid user out."""
    throttle = AuthThrottle(account_limit=100, address_limit=5, global_limit=100)
    for i in range(5):
        throttle.failed("10.1.1.1", f"guess{i}")
    with pytest.raises(TooManyAttemptsError):
        throttle.check("10.1.1.1", "guess0")  # a name that already failed from there waits
    throttle.check("10.1.1.1", "insp.tam")  # a colleague's first attempt is checked


def test_global_budget_bounds_password_checks_across_all_addresses() -> None:
    throttle = AuthThrottle(account_limit=100, address_limit=100, global_limit=4)
    for i in range(4):
        throttle.failed(f"10.2.0.{i}", f"name{i}")
    with pytest.raises(TooManyAttemptsError):
        throttle.check("10.3.0.1", "insp.an")


def test_throttle_forgets_failures_older_than_its_window() -> None:
    throttle = AuthThrottle(account_limit=1, address_limit=1, global_limit=1, window_s=0.0)
    throttle.failed("10.0.0.1", "ro.binh")
    throttle.check("10.0.0.1", "ro.binh")


def test_password_checks_run_one_at_a_time_and_refuse_beyond_the_queue() -> None:
    checks = PasswordChecks(running=1, waiting=2)
    inside, most, gate = [0], [0], threading.Event()
    lock = threading.Lock()

    def check() -> None:
        with checks.slot():
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            gate.wait(timeout=10)
            with lock:
                inside[0] -= 1

    waiting = [threading.Thread(target=check) for _ in range(3)]  # one runs, two queue
    for t in waiting:
        t.start()
    for _ in range(500):
        if checks.admitted == 3 and inside[0] == 1:
            break
        threading.Event().wait(0.01)
    assert (checks.admitted, inside[0]) == (3, 1)
    with pytest.raises(TooManyAttemptsError, match="busy"), checks.slot():
        pytest.fail("a fourth check entered a full queue")
    gate.set()
    for t in waiting:
        t.join(timeout=10)
    assert most[0] == 1
    with checks.slot():  # the queue drained: admitted again
        pass


def test_refusal_counts_add_up_across_sources_windows_and_overflow() -> None:
    tally = RefusalTally(window=timedelta(minutes=1), max_keys=5)
    sent = 0
    written = []
    for i in range(1000):
        now = T0 + timedelta(seconds=i * 0.25)  # 250 s: five windows
        written += tally.closed(now)
        tally.add("auth.login", source=f"10.0.0.{i % 10}", actor="a1_x", reason="R", now=now)
        sent += 1
    written += tally.closed(T0 + timedelta(hours=1), everything=True)
    assert sum(int(e.detail["count"]) for e in written) == sent
    assert len(written) <= 6 * 5 + 6  # bounded per window, whatever the sources
    assert any(e.detail["source"] == "(other sources)" for e in written)
    assert all(e.outcome == "failure" and e.action == "auth.login" for e in written)
    assert tally.closed(T0 + timedelta(hours=2), everything=True) == []


def test_open_window_is_not_written_before_its_end() -> None:
    tally = RefusalTally(window=timedelta(minutes=1))
    tally.add("auth.token", source="10.0.0.1", actor="(token)", reason="R", now=T0)
    assert tally.closed(T0 + timedelta(seconds=59)) == []
    (event,) = tally.closed(T0 + timedelta(seconds=60))
    assert (event.detail["count"], event.detail["source"], event.actor) == (
        1,
        "10.0.0.1",
        "(token)",
    )


def test_csrf_and_form_key_need_the_server_secret_not_only_the_token() -> None:
    """Reproduces #11 item 8: the hidden-form key was derived from the user's token alone."""
    principal = Principal("insp.an", Role.INSPECTOR, "t1", None)
    token = "token-a"
    one, two = Caller(principal, token, b"1" * 32), Caller(principal, token, b"2" * 32)
    from_token = hmac.new(token.encode(), b"emr-archive.portal.csrf", hashlib.sha256).hexdigest()
    assert one.csrf != from_token
    assert one.csrf != two.csrf
    with pytest.raises(Exception, match="form"):
        two.unseal(one.seal("value"))


@pytest.mark.parametrize(
    ("host", "secure"),
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),  # noqa: S104 - a setting under test, nothing binds
        ("10.0.0.5", True),
        ("portal.benhvien.vn", True),
    ],
)
def test_secure_cookies_default_true_off_loopback(host: str, secure: bool) -> None:
    assert PortalSettings(host=host).secure_cookies is secure


def test_secure_cookies_explicit_false_is_respected() -> None:
    assert PortalSettings(host="0.0.0.0", secure_cookies=False).secure_cookies is False  # noqa: S104
