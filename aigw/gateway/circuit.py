"""The circuit breaker's policy over the shared state: no HTTP, no SDK.

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

from aigw.common.state import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerRow,
    BreakerRule,
    SharedState,
    breaker_refuses,
)
from aigw.errors import AigwError, ExitCode
from aigw.gateway.clock import Clock

if TYPE_CHECKING:
    from aigw.settings import Settings

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "CircuitBreaker",
    "CircuitOpenError",
    "host_of",
    "refusal_error",
]


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


def refusal_error(row: BreakerRow, now: float, rule: BreakerRule) -> CircuitOpenError | None:
    """The refusal a breaker row means at `now`, worded for people; None when a call may go."""
    if not breaker_refuses(row, now, rule):
        return None
    since = _clock_time(row.opened_at)
    if row.state == OPEN:
        wait = (row.probe_at or 0) - now
        return CircuitOpenError(
            f"circuit open for {row.host} since {since} after {row.failures} failures; "
            f"next probe in {max(1, round(wait))} s; --force to try anyway",
            retry_after=wait,
        )
    return CircuitOpenError(
        f"circuit half-open for {row.host} (open since {since} after {row.failures} "
        "failures): a probe is in flight; --force to try anyway"
    )


class CircuitBreaker:
    """The breaker's rule over the shared state; the server drives the same rule through its
    async state (server/runtime.py) and words refusals with `error_for`."""

    def __init__(
        self,
        store: SharedState,
        *,
        failures_to_open: int = 5,
        cooldown: float = 30.0,
        probe_timeout: float = 60.0,
        clock: Clock | None = None,
    ):
        self.store = store
        self.rule = BreakerRule(failures_to_open, cooldown, probe_timeout)
        self.clock = clock or Clock()

    def refusal(self, host: str, *, claim: bool) -> CircuitOpenError | None:
        """The error to fail with, or None to let the call go.

        With `claim`, a call arriving after the cool-down becomes the one half-open probe
        (atomically, so two processes never both probe). Without it (preflight) nothing is
        written: the transport will claim.
        """
        now = self.clock.now()
        if claim:
            refusing = self.store.breaker_claim(host, now, self.rule)
            return self.error_for(refusing, now) if refusing is not None else None
        row = self.store.breaker_get(host)
        return self.error_for(row, now) if row is not None else None

    def error_for(self, row: BreakerRow, now: float) -> CircuitOpenError | None:
        """The refusal a row means at `now`, or None when a call may go."""
        return refusal_error(row, now, self.rule)

    def record(self, host: str, *, failure: bool, error: str | None = None) -> None:
        """Count a call's outcome for its host: opens or closes the circuit as the rule says."""
        self.store.breaker_record(host, self.clock.now(), self.rule, failure=failure, error=error)

    def end_probe(self, host: str, *, error: str | None = None) -> None:
        """A call ended without an answer that says anything of the upstream: if it was the
        half-open probe, the probe failed (the circuit opens again for a full cool-down)."""
        row = self.store.breaker_get(host)
        if row is not None and row.state == HALF_OPEN:
            self.record(host, failure=True, error=error)


def breaker_for(
    settings: Settings, state: SharedState, clock: Clock | None = None
) -> CircuitBreaker:
    """The breaker configured by `settings` over the shared `state`."""
    rule = breaker_rule(settings)
    return CircuitBreaker(
        state,
        failures_to_open=rule.failures_to_open,
        cooldown=rule.cooldown,
        probe_timeout=rule.probe_timeout,
        clock=clock,
    )


def breaker_rule(settings: Settings) -> BreakerRule:
    """The breaker's rule as `settings` configure it."""
    return BreakerRule(settings.breaker_failures, settings.breaker_cooldown, settings.timeout + 5)
