"""AsyncLocal: the local SQLite state behind the gateway server's event loop (the default,
without AIGW_STATE_URL; the Redis failover falls back to the plain SQLiteState instead).

The event loop uses SQLiteState directly: each call is one short local transaction, cheaper
than a hop to a thread. What a request would otherwise wait for is kept in memory, with the
bounds the class docstring gives: first tries' Idempotency-Keys (written together), rate-limit
slots taken ahead (leases) and a closed circuit's breaker row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aigw.common.state import (
    CLOSED,
    OPEN,
    Admission,
    AsyncSharedState,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    Lease,
    record_step,
)
from aigw.errors import ExitCode
from aigw.storage.failover import StateUnavailable
from aigw.storage.state import SQLiteState

# The longest a first try's key waits in a worker's memory before other workers can find it.
KEYS_WINDOW_S = 0.05
# How long a worker decides from the breaker row it read (a closed circuit's); at most half
# the cool-down, so the circuit cannot reach half-open unseen and the probe stays the only call.
BREAKER_FRESH_S = 1.0


class AsyncLocal(AsyncSharedState):
    """SQLiteState behind the async interface: shared by the workers of one machine.

    A first try's Idempotency-Key is kept in memory and written with the others of the last
    `window` seconds in one transaction, not in one of its own before each create goes
    upstream. A retry on this worker finds it in memory; one on another worker finds it once
    written: `settle` writes it before any answer a client would retry, and a client that
    gave up without an answer retries after its own timeout, so the window stays short
    (KEYS_WINDOW_S at most, whatever the log rows' commit window). A `kill -9` loses the keys
    of the last window.

    Rate-limit slots are taken ahead (a `Lease` per bucket: sized by this worker's use, at
    most LEASE_AHEAD_S of the bucket's rate, kept at most LEASE_KEPT_S): most requests decide
    their limits in memory, and one that needs slots takes them in its own transaction, with
    the cache read. A slot is taken before it is used, so over time the workers together stay
    within the limit; a burst can pass the limit's by at most what each worker holds (20 ms
    of the rate), and slots a worker holds unused can have another refused that much early.

    A closed circuit lets a call go on the breaker row read at most BREAKER_FRESH_S before:
    another worker's opening is seen within that. A success reads the row once per turn of
    the event loop (the requests of one turn share it), so that it clears the failures other
    workers counted, closes a half-open circuit (the probe's), and leaves an open one alone
    (the call went before it opened: its cool-down stands); anything else (a failure, a
    circuit not closed) is decided in the store's own transaction.
    """

    mode = "local"

    def __init__(
        self,
        local: SQLiteState,
        *,
        window: float = KEYS_WINDOW_S,
        warn: Callable[[str], None] = lambda message: None,
    ):
        self.local = local
        self.window = window
        self.warn = warn
        self._kept: dict[str, tuple[str, float]] = {}  # fingerprint: (key, expires_at)
        self._timer: asyncio.TimerHandle | None = None
        self._failing = False
        self._breakers: dict[str, tuple[float, BreakerRow | None]] = {}  # host: (read at, row)
        self._read_this_turn: set[str] = set()  # hosts whose row was read in this loop turn
        self._leases: dict[str, Lease] = {}  # rate-limit slots taken ahead, by bucket

    async def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        self.local.cache_put(entry, keep_for=keep_for)

    async def cache_drop(self, tags: list[str]) -> int:
        return self.local.cache_drop(tags)

    async def admit(
        self, buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None
    ) -> Admission:
        leases = [self._leases.setdefault(name, Lease()) for name, _ in buckets]
        short = [i for i, lease in enumerate(leases) if not lease.has_slot(now)]
        entry = None
        if short:
            asked = [leases[i].next_size(now, buckets[i][1]) for i in short]
            got, taken = self.local.take_ahead([buckets[i] for i in short], asked, now, key)
            if got.refused_by is not None:
                return Admission(got.wait, short[got.refused_by])
            for i, size, count in zip(short, asked, taken, strict=True):
                leases[i].renew(size, count, now)
            entry = got.entry
        elif key is not None:
            entry = self.local.cache_get(key)
        for lease in leases:
            lease.left -= 1
        return Admission(entry=entry)

    async def breaker_get(self, host: str) -> BreakerRow | None:
        return self.local.breaker_get(host)

    async def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        row = self._breaker_recent(host, now, rule)
        if row is None or row.state == CLOSED:
            return None
        self._breakers.clear()
        return self.local.breaker_claim(host, now, rule)

    async def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        if not failure:
            # As read in this turn: a success must clear the failures other workers counted
            # since (a row read a second ago would let their failures add up across successes).
            row = self._breaker_recent(host, now, rule, this_turn=True)
            if row is not None and row.state == OPEN:
                return  # opened since this call went, perhaps on a row read a second before
            if record_step(host, row, now, rule, failure=False, error=error) is None:
                return
        self._breakers.clear()
        self.local.breaker_record(host, now, rule, failure=failure, error=error)

    def _breaker_recent(
        self, host: str, now: float, rule: BreakerRule, *, this_turn: bool = False
    ) -> BreakerRow | None:
        """The host's breaker row as read less than BREAKER_FRESH_S (or half the cool-down)
        ago; with `this_turn`, as read in this turn of the event loop."""
        found = self._breakers.get(host)
        if (
            found is not None
            and 0 <= now - found[0] < min(BREAKER_FRESH_S, rule.cooldown / 2)
            and (not this_turn or host in self._read_this_turn)
        ):
            return found[1]
        row = self.local.breaker_get(host)
        self._breakers[host] = (now, row)
        if not self._read_this_turn:
            asyncio.get_running_loop().call_soon(self._read_this_turn.clear)
        self._read_this_turn.add(host)
        return row

    async def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        return self.local.remembered_key(scope)

    async def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        self.local.remember_key(scope, fingerprint, announced=announced)

    async def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        if not retry:
            self._kept[fingerprint] = (proposed, now + keep_for)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.window, self._write)
            return proposed
        kept = self._kept.get(fingerprint)
        if kept is not None and kept[1] > now:
            return kept[0]
        return self.local.idempotency_key(fingerprint, proposed, now, retry=True, keep_for=keep_for)

    async def settle(self) -> None:
        self._write()

    async def close(self) -> None:
        """Write the keys kept back; the local state is closed by its owner (the runtime)."""
        if not self._write(again=False):
            raise StateUnavailable(
                f"{len(self._kept)} Idempotency-Keys could not be written to the local state",
                code=ExitCode.DATABASE,
            )

    def _write(self, *, again: bool = True) -> bool:
        """Write the kept keys in one transaction; False when the store refused them (kept,
        and with `again` tried once more a window later)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._kept:
            return True
        kept, self._kept = self._kept, {}
        now = time.time()
        try:
            self.local.idempotency_keep([(f, k, until) for f, (k, until) in kept.items()], now)
        except Exception as exc:
            self._kept = {f: v for f, v in kept.items() if v[1] > now}  # the expired: no use
            if not self._failing:
                self._failing = True
                self.warn(f"Idempotency-Keys not written yet: {type(exc).__name__}: {exc}"[:300])
            if again and self._kept:
                self._timer = asyncio.get_running_loop().call_later(self.window, self._write)
            return False
        self._failing = False
        return True
