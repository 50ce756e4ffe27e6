"""How many failed sign-ins the portal lets through before it answers 429 without checking.

A password check costs ~50 ms of scrypt, so failures are limited before the check, three ways in
one sliding window:

- per account (any address): guessing one account's password, from one place or many;
- global: bounds the scrypt work all failures together may cost, whatever their spread;
- per address, but only for names that already failed from it: an address over its budget may
  still try a name it has not failed on, so colleagues behind a hospital's one NAT address still
  sign in while the guesser among them waits. Each fresh name costs the guesser one attempt,
  bounded by the global budget.

Tokens are not limited before their check: it is one HMAC, and a live session behind an attacked
address must keep working. Their failures still count against the address and the account named.
Refusals, throttled or not, are counted in the audit log per source and window
(:mod:`retrieval.service.refusals`), so no limit here protects the log any more.

The budgets bound how many checks a minute costs, not how many run at once: ten attackers'
checks at the same moment took both cores from everyone else's pages (the officer's search p95
went from 19 to 132 ms). :class:`PasswordChecks` runs one check at a time (scrypt releases the
interpreter lock, so a second core stays for the other pages) with a short queue; an attempt
that finds the queue full is answered 429 at once, without hashing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from portal.errors import TooManyAttemptsError

_FORGET_AFTER = 10_000  # distinct keys before quiet ones are swept


class AuthThrottle:
    """Failures per account, per address (with the names tried) and overall."""

    def __init__(
        self,
        *,
        account_limit: int = 10,
        address_limit: int = 30,
        global_limit: int = 300,
        window_s: float = 60.0,
    ) -> None:
        self.account_limit, self.address_limit = account_limit, address_limit
        self.global_limit, self.window_s = global_limit, window_s
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[tuple[float, str]]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self, address: str, account: str) -> None:
        """Before a password check: TooManyAttemptsError if any budget is spent."""
        with self._lock:
            now = time.monotonic()
            self._sweep(now)
            if len(self._prune(self._all, now)) >= self.global_limit:
                raise TooManyAttemptsError("too many failed sign-ins: wait a minute and try again")
            if len(self._prune(self._accounts.get(account, deque()), now)) >= self.account_limit:
                raise TooManyAttemptsError(
                    "too many failed sign-ins for this account: wait a minute and try again"
                )
            tried = self._prune_named(self._addresses.get(address, deque()), now)
            if len(tried) >= self.address_limit and any(name == account for _, name in tried):
                raise TooManyAttemptsError(
                    "too many failed sign-ins from this address: wait a minute and try again"
                )

    def failed(self, address: str, account: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._all.append(now)
            self._accounts.setdefault(account, deque()).append(now)
            self._addresses.setdefault(address, deque()).append((now, account))

    def _prune(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _prune_named(self, tried: deque[tuple[float, str]], now: float) -> deque[tuple[float, str]]:
        while tried and tried[0][0] <= now - self.window_s:
            tried.popleft()
        return tried

    def _sweep(self, now: float) -> None:
        """Forget quiet accounts and addresses now and then: memory stays bounded."""
        if len(self._accounts) + len(self._addresses) < _FORGET_AFTER:
            return
        self._accounts = {k: v for k, v in self._accounts.items() if self._prune(v, now)}
        self._addresses = {k: v for k, v in self._addresses.items() if self._prune_named(v, now)}


class PasswordChecks:
    """At most ``running`` password checks at once and ``waiting`` more queued behind them."""

    def __init__(self, *, running: int = 1, waiting: int = 16) -> None:
        self.running, self.waiting = running, waiting
        self._admitted = 0
        self._lock = threading.Lock()
        self._turn = threading.BoundedSemaphore(running)

    @property
    def admitted(self) -> int:
        """Checks running or queued now."""
        return self._admitted

    @contextmanager
    def slot(self) -> Iterator[None]:
        """The block runs when a check may; TooManyAttemptsError at once if the queue is full."""
        with self._lock:
            if self._admitted >= self.running + self.waiting:
                raise TooManyAttemptsError(
                    "the portal is busy checking other sign-ins: try again in a moment"
                )
            self._admitted += 1
        try:
            with self._turn:
                yield
        finally:
            with self._lock:
                self._admitted -= 1
