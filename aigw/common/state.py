"""The shared state every gateway layer depends on: one small interface, its plain values, and
the pure steps of its decisions.

Backends (aigw/storage/): SQLite in AIGW_HOME (one machine, the default), Redis
(AIGW_STATE_URL, many machines), and a failover over Redis that falls back to the local one.
Each decision that reads and writes (a rate-limit slot, the half-open probe, a breaker count)
is one call, atomic in its backend: a SQLite transaction runs the steps below, a Redis Lua
script runs the same steps on the server. tests/test_state_backends.py holds both to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# An upstream asking for a day must not lock every process out for a day.
MAX_SHARED_PAUSE = 600.0


@dataclass(frozen=True)
class CacheEntry:
    key: str
    tag: str
    url: str
    stored_at: float
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class BreakerRow:
    host: str
    state: str
    failures: int
    opened_at: float | None = None
    probe_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Gcra:
    """A rate as GCRA sees it: one slot per `interval`, `tolerance` seconds of burst."""

    interval: float
    tolerance: float


@dataclass(frozen=True)
class Admission:
    """A request's rate limits and cache read, decided together: `wait` 0.0 and every slot
    taken, with the cache entry asked for (None when there is none or none was asked for);
    or the seconds until the bucket at `refused_by` (its index) has a slot, nothing taken."""

    wait: float = 0.0
    refused_by: int | None = None
    entry: CacheEntry | None = None


@dataclass(frozen=True)
class BreakerRule:
    """What a breaker count needs to decide."""

    failures_to_open: int
    cooldown: float
    probe_timeout: float  # a half-open probe that never reported back frees the slot after this


class SharedState(Protocol):
    """Cache entries, rate-limit buckets, breaker rows, remembered keys and the gateway's
    idempotency keys, as every process on a machine (or, with Redis, every machine) shares
    them. `idempotency_key` gives the key remembered under `fingerprint` when `retry` (and it
    is still kept), else remembers and gives `proposed`."""

    def cache_get(self, key: str) -> CacheEntry | None:
        """The entry under `key`, or None."""

    def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        """Keep `entry` for `keep_for` seconds."""

    def cache_drop(self, tags: list[str]) -> int:
        """Drop the entries with any of these tags; how many went."""

    def rate_take(self, name: str, rule: Gcra, now: float, *, reserve: bool) -> float:
        """Take a slot of the named bucket; the seconds to wait for it (0: now)."""

    def rate_pause(self, name: str, until: float, now: float) -> None:
        """Hold the named bucket back until `until` (an upstream's Retry-After)."""

    def rate_reset(self) -> int:
        """Empty every bucket; how many there were."""

    def breaker_get(self, host: str) -> BreakerRow | None:
        """The host's breaker row, or None (closed)."""

    def breaker_all(self) -> list[BreakerRow]:
        """Every breaker row."""

    def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        """The row that refuses a call to `host`, or None: the call goes (as the probe, if due)."""

    def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        """Count a call's outcome: opens, reopens or closes the circuit as `rule` says."""

    def breaker_reset(self, host: str | None = None) -> int:
        """Close the host's circuit (every circuit without one); how many were reset."""

    def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        """The fingerprint of the key that last worked in `scope`, and whether it was announced."""

    def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        """Remember the key that works in `scope`."""

    def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        """The key remembered under `fingerprint` for a retry, else `proposed`, remembered."""

    def close(self) -> None:
        """Release the connections."""


class AsyncSharedState(Protocol):
    """The same interface for the gateway server's event loop."""

    async def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        """Keep `entry` for `keep_for` seconds."""

    async def cache_drop(self, tags: list[str]) -> int:
        """Drop the entries with any of these tags; how many went."""

    async def admit(
        self, buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None
    ) -> Admission:
        """A slot of every named bucket, all or none (none reserved ahead), then the cache
        entry under `key` when given: one transaction, one round trip if remote."""

    async def breaker_get(self, host: str) -> BreakerRow | None:
        """The host's breaker row, or None (closed)."""

    async def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        """The row that refuses a call to `host`, or None: the call goes (as the probe, if due)."""

    async def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        """Count a call's outcome: opens, reopens or closes the circuit as `rule` says."""

    async def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        """The fingerprint of the key that last worked in `scope`, and whether it was announced."""

    async def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        """Remember the key that works in `scope`."""

    async def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        """The key remembered under `fingerprint` for a retry, else `proposed`, remembered
        (by the local state within its commit window: `settle` writes it at once)."""

    async def settle(self) -> None:
        """Write now what a call may have kept back: before the gateway sends an answer a
        client may retry elsewhere."""

    async def close(self) -> None:
        """Write what is kept back and release the connections."""


# -- the decisions' steps (the Redis scripts in aigw/storage/redis_state.py do the same) --------
def gcra_step(
    tat: float | None, now: float, rule: Gcra, *, reserve: bool
) -> tuple[float, float | None]:
    """(seconds until a slot is free, the bucket's new theoretical arrival time or None when
    nothing is taken). `reserve` takes the next slot even when it is in the future."""
    tat = max(tat if tat is not None else now, now)
    # A pause stored under a longer cap (or a clock that jumped) is clamped like a new one.
    tat = min(tat, now + rule.tolerance + rule.interval + MAX_SHARED_PAUSE)
    delay = max(0.0, tat - rule.tolerance - now)
    if delay > 0 and not reserve:
        return delay, None
    return delay, tat + rule.interval


def admit_step(
    tats: Sequence[float | None], now: float, rules: Sequence[Gcra], wanted: Sequence[int]
) -> tuple[float, int | None, list[float], list[int]]:
    """Slots of every bucket, all or none: up to `wanted[i]` of bucket i, as many as are free
    now. (0.0, None, the buckets' new arrival times, how many each gave), or (seconds until
    the first bucket without a free slot has one, its index, [], [])."""
    new_tats, counts = [], []
    for index, (tat, rule, want) in enumerate(zip(tats, rules, wanted, strict=True)):
        delay, new = gcra_step(tat, now, rule, reserve=False)
        if new is None:
            return delay, index, [], []
        # slot j is free while tat + j * interval - tolerance <= now
        free = 1 + int((now + rule.tolerance - (new - rule.interval)) / rule.interval)
        count = max(1, min(want, free))
        new_tats.append(new + (count - 1) * rule.interval)
        counts.append(count)
    return 0.0, None, new_tats, counts


# A gateway worker's rate-limit slots taken ahead (aigw/storage/local_async.py): at most this
# much of a bucket's rate, kept at most LEASE_KEPT_S, so a few requests a second need no
# transaction either.
LEASE_AHEAD_S = 0.02
LEASE_KEPT_S = 1.0


@dataclass
class Lease:
    """Slots of one bucket a worker took ahead, so that most requests need no transaction:
    the size follows the worker's use (doubled when a lease ran out early, halved when slots
    lapsed unused), up to LEASE_AHEAD_S of the bucket's rate; 1 for a bucket of fewer than
    2/LEASE_AHEAD_S (100) calls a second, which is decided call by call."""

    left: int = 0  # taken, not used yet
    until: float = 0.0  # when the unused ones lapse
    size: int = 1  # how many the last lease asked for

    def has_slot(self, now: float) -> bool:
        return self.left > 0 and now < self.until

    def next_size(self, now: float, rule: Gcra) -> int:
        if now < self.until:  # ran out early: the worker uses more
            size = self.size * 2
        elif self.left > 0:  # lapsed with slots unused
            size = self.size // 2
        else:
            size = self.size
        return max(1, min(size, int(LEASE_AHEAD_S / rule.interval)))

    def renew(self, asked: int, taken: int, now: float) -> None:
        self.size, self.left, self.until = asked, taken, now + LEASE_KEPT_S


def breaker_refuses(row: BreakerRow, now: float, rule: BreakerRule) -> bool:
    """Whether a call must not go: open before its probe time, or half-open with its probe
    still in flight."""
    if row.state == CLOSED:
        return False
    if row.state == OPEN:
        return (row.probe_at or 0) - now > 0
    return now - (row.probe_at or 0) < rule.probe_timeout


def claim_step(
    row: BreakerRow | None, now: float, rule: BreakerRule
) -> tuple[BreakerRow | None, BreakerRow | None]:
    """(the row that refuses the call, or None: it goes; the row to write, or None)."""
    if row is None or row.state == CLOSED:
        return None, None
    if breaker_refuses(row, now, rule):
        return row, None
    return None, BreakerRow(row.host, HALF_OPEN, row.failures, row.opened_at, now, row.last_error)


def record_step(
    host: str,
    row: BreakerRow | None,
    now: float,
    rule: BreakerRule,
    *,
    failure: bool,
    error: str | None,
) -> BreakerRow | None:
    """The row after a call ended (a failure of the upstream's, or an answer), None when
    nothing changes (the common case: closed, no failures, a success)."""
    if not failure:
        if row is None or (row.state == CLOSED and row.failures == 0):
            return None
        return BreakerRow(host, CLOSED, 0)
    state = row.state if row is not None else CLOSED
    failures = (row.failures if row is not None else 0) + 1
    if state == HALF_OPEN or failures >= rule.failures_to_open:
        # The failed probe (or the Nth failure) opens it again for a full cool-down.
        return BreakerRow(host, OPEN, failures, now, now + rule.cooldown, error)
    return BreakerRow(host, CLOSED, failures, None, None, error)
