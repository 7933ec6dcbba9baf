"""The circuit breaker's state as people see it, and resetting it (no SDK, no network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aigw.gateway.circuit import CLOSED, OPEN, host_of
from aigw.storage import open_state

if TYPE_CHECKING:
    from aigw.context import AppContext


@dataclass(frozen=True)
class BreakerStatus:
    host: str
    state: str  # closed | open | half_open
    failures: int  # consecutive
    opened_at: float | None
    next_probe_in: float | None  # seconds; only while open
    last_error: str | None
    configured: bool  # the upstream the current settings point at


def breaker_status(app: AppContext) -> list[BreakerStatus]:
    """Every host the breaker knows, and always the configured one (closed when unknown)."""
    configured = host_of(app.settings.base_url)
    store = open_state(app.settings)
    try:
        rows = store.breaker_all()
    finally:
        store.close()
    now = app.clock.now()
    found = [
        BreakerStatus(
            row.host,
            row.state,
            row.failures,
            row.opened_at,
            max(0.0, (row.probe_at or now) - now) if row.state == OPEN else None,
            row.last_error,
            row.host == configured,
        )
        for row in rows
    ]
    if not any(s.configured for s in found):
        found.insert(0, BreakerStatus(configured, CLOSED, 0, None, None, None, True))
    return found


def breaker_reset(
    app: AppContext, host: str | None = None, *, every_host: bool = False
) -> list[BreakerStatus]:
    """Close circuits: `host`'s, every host's (`every_host`: their failure counts too), or by
    default every one that is not closed. Returns those that were not closed, as they were."""
    before = [s for s in breaker_status(app) if s.state != CLOSED]
    if host is not None:
        before = [s for s in before if s.host == host]
    store = open_state(app.settings)
    try:
        if every_host:
            store.breaker_reset(None)
        elif host is not None:
            store.breaker_reset(host)
        for status in before:
            store.breaker_reset(status.host)
    finally:
        store.close()
    return before


def rate_limit_reset(app: AppContext) -> int:
    """Lift the shared rate-limit pause an upstream's 429 set (every bucket is forgotten)."""
    store = open_state(app.settings)
    try:
        return store.rate_reset()
    finally:
        store.close()
