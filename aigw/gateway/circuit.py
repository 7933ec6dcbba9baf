"""The circuit breaker's policy over the local store: no HTTP, no SDK.

`CircuitBreaker` decides from the shared state whether a call to a host may go and records
how calls ended; `BreakerTransport` (transports/breaker.py) asks it per attempt, and
`preflight` (gateway/preflight.py) asks it before the SDK, or even httpx2, is imported — a
refused invocation must stay cheap. Failures are the upstream's: 5xx and 429 answers, timeouts,
connection errors; any other answer (4xx included) proves the upstream is up and resets the
count. A local error (a bad header value, a refused redirect, a body over the cap) is not
counted, but ends a half-open probe as a failure.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aigw.errors import AigwError, ExitCode
from aigw.gateway.clock import Clock
from aigw.storage.state import BreakerRow, StateStore

if TYPE_CHECKING:
    from aigw.settings import Settings

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def host_of(url: str) -> str:
    """The breaker's key for a URL: host, plus the port when one is given."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


class CircuitOpenError(AigwError):
    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message, code=ExitCode.CIRCUIT_OPEN, hint="`aigw breaker status` shows it")
        self.retry_after = retry_after  # seconds until the next probe, when known


def _clock_time(epoch: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch or 0))


class CircuitBreaker:
    def __init__(
        self,
        store: StateStore,
        *,
        failures_to_open: int = 5,
        cooldown: float = 30.0,
        probe_timeout: float = 60.0,
        clock: Clock | None = None,
    ):
        self.store = store
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown
        # A half-open probe that never reported back (killed process) frees the slot after this.
        self.probe_timeout = probe_timeout
        self.clock = clock or Clock()

    def refusal(self, host: str, *, claim: bool) -> CircuitOpenError | None:
        """The error to fail with, or None to let the call go.

        With `claim`, a call arriving after the cool-down becomes the one half-open probe
        (atomically, so two processes never both probe). Without it (preflight) nothing is
        written: the transport will claim.
        """
        row = self.store.breaker_get(host)
        if row is None or row.state == CLOSED:
            return None
        if not claim:
            return self._refusal_for(row, self.clock.now())
        with self.store.immediate() as db:
            row = self.store.breaker_get(host, db)
            if row is None or row.state == CLOSED:
                return None
            now = self.clock.now()
            error = self._refusal_for(row, now)
            if error is None:
                self.store.breaker_put(
                    db,
                    BreakerRow(host, HALF_OPEN, row.failures, row.opened_at, now, row.last_error),
                )
            return error

    def _refusal_for(self, row: BreakerRow, now: float) -> CircuitOpenError | None:
        since = _clock_time(row.opened_at)
        if row.state == OPEN:
            wait = (row.probe_at or 0) - now
            if wait <= 0:
                return None
            return CircuitOpenError(
                f"circuit open for {row.host} since {since} after {row.failures} failures; "
                f"next probe in {max(1, round(wait))} s; --force to try anyway",
                retry_after=wait,
            )
        if now - (row.probe_at or 0) >= self.probe_timeout:
            return None
        return CircuitOpenError(
            f"circuit half-open for {row.host} (open since {since} after {row.failures} "
            "failures): a probe is in flight; --force to try anyway"
        )

    def record(self, host: str, *, failure: bool, error: str | None = None) -> None:
        row = self.store.breaker_get(host)
        if not failure and (row is None or (row.state == CLOSED and row.failures == 0)):
            return  # the common case writes nothing
        with self.store.immediate() as db:
            row = self.store.breaker_get(host, db) or BreakerRow(host, CLOSED, 0)
            if not failure:
                self.store.breaker_put(db, BreakerRow(host, CLOSED, 0))
                return
            now = self.clock.now()
            failures = row.failures + 1
            if row.state == HALF_OPEN or failures >= self.failures_to_open:
                # The failed probe (or the Nth failure) opens it again for a full cool-down.
                new = BreakerRow(host, OPEN, failures, now, now + self.cooldown, error)
            else:
                new = BreakerRow(host, CLOSED, failures, None, None, error)
            self.store.breaker_put(db, new)

    def end_probe(self, host: str, *, error: str | None = None) -> None:
        """A call ended without an answer that says anything of the upstream: if it was the
        half-open probe, the probe failed (the circuit opens again for a full cool-down)."""
        row = self.store.breaker_get(host)
        if row is not None and row.state == HALF_OPEN:
            self.record(host, failure=True, error=error)


def breaker_for(
    settings: Settings, state: StateStore, clock: Clock | None = None
) -> CircuitBreaker:
    """The breaker configured by `settings` over the shared `state`."""
    return CircuitBreaker(
        state,
        failures_to_open=settings.breaker_failures,
        cooldown=settings.breaker_cooldown,
        probe_timeout=settings.timeout + 5,
        clock=clock,
    )
