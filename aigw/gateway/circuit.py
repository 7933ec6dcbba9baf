"""The circuit breaker's policy over the shared state: no HTTP, no SDK.

`CircuitBreaker` decides from the shared state whether a call to a host may go and records
how calls ended; `BreakerTransport` (transports/breaker.py) asks it per attempt, and
`preflight` asks it before the SDK, or even httpx2, is imported — a refused invocation must
stay cheap (no network, and cheaper than importing the SDK). Failures are the upstream's:
5xx and 429 answers, timeouts, connection errors; any other answer (4xx included) proves the
upstream is up and resets the count. A local error (a bad header value, a refused redirect, a
body over the cap) is not counted, but ends a half-open probe as a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from aigw.gateway import Clock

if TYPE_CHECKING:
    from aigw.common.log_record import LogRecord
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


def refusal_error(row: BreakerRow, now: float, rule: BreakerRule) -> CircuitOpenError | None:
    """The refusal a breaker row means at `now`, worded for people; None when a call may go."""
    if not breaker_refuses(row, now, rule):
        return None
    since = time.strftime("%H:%M:%S", time.localtime(row.opened_at or 0))
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
    async state (server/runtime.py) and words refusals with `refusal_error`."""

    def __init__(self, store: SharedState, rule: BreakerRule, clock: Clock | None = None):
        self.store = store
        self.rule = rule
        self.clock = clock or Clock()

    def refusal(self, host: str, *, claim: bool) -> CircuitOpenError | None:
        """The error to fail with, or None to let the call go.

        With `claim`, a call arriving after the cool-down becomes the one half-open probe
        (atomically, so two processes never both probe). Without it (preflight) nothing is
        written: the transport will claim.
        """
        now = self.clock.now()
        if claim:
            row = self.store.breaker_claim(host, now, self.rule)
        else:
            row = self.store.breaker_get(host)
        return refusal_error(row, now, self.rule) if row is not None else None

    def record(self, host: str, *, failure: bool, error: str | None = None) -> None:
        """Count a call's outcome for its host: opens or closes the circuit as the rule says."""
        self.store.breaker_record(host, self.clock.now(), self.rule, failure=failure, error=error)

    def end_probe(self, host: str, *, error: str | None = None) -> None:
        """A call ended without an answer that says anything of the upstream: if it was the
        half-open probe, the probe failed (the circuit opens again for a full cool-down)."""
        row = self.store.breaker_get(host)
        if row is not None and row.state == HALF_OPEN:
            self.record(host, failure=True, error=error)


def breaker_rule(settings: Settings) -> BreakerRule:
    """The breaker's rule as `settings` configure it."""
    return BreakerRule(settings.breaker_failures, settings.breaker_cooldown, settings.timeout + 5)


def breaker_for(
    settings: Settings, state: SharedState, clock: Clock | None = None
) -> CircuitBreaker:
    """The breaker configured by `settings` over the shared `state`."""
    return CircuitBreaker(state, breaker_rule(settings), clock)


def preflight(
    settings: Settings,
    state: SharedState,
    *,
    record: Callable[[LogRecord], None],
    force: bool = False,
    clock: Clock | None = None,
) -> None:
    """Raise CircuitOpenError (exit code CIRCUIT_OPEN) while the breaker refuses the upstream,
    from the local store only, before the Gateway (httpx2, the SDK) is built.

    BreakerTransport checks again per attempt; this is only the early, cheap answer. The
    refusal is still one log row, handed to `record`; which endpoint is unknown before the
    SDK builds the request, hence `*`. Nothing is written when the call may go.
    """
    if force:
        return
    error = breaker_for(settings, state, clock).refusal(host_of(settings.base_url), claim=False)
    if error is not None:
        from aigw.common.log_record import LogRecord

        record(
            LogRecord(endpoint="*", method="*", error_message=error.message, route=settings.route)
        )
        raise error
