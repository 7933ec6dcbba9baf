"""The shared state as processes use it: the local SQLite state, or Redis (AIGW_STATE_URL)
with a fall-back to the local state while Redis does not answer.

While Redis does not answer (an error or AIGW_STATE_TIMEOUT), aigw keeps serving: the cache
is skipped, the breaker and remembered keys use this machine's SQLite state, and the rate
limit does too (AIGW_RATE_LIMIT_FALLBACK=fail-open, the default) or refuses
(fail-closed). One warning says so; Redis is tried again at most once a second, and the
first answer ends the outage (one more line). The cache drops a write could not send are
held and go before any other call to Redis (kept when they fail again, tried once more when
the state closes); the first cache read after an outage is a miss. `AsyncLocal` lets the
event loop use SQLiteState directly (each call is one short local transaction, cheaper than a
hop to a thread), except that first tries' Idempotency-Keys are written together once per
commit window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aigw.common.state import (
    CLOSED,
    Admission,
    AsyncSharedState,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    Lease,
    SharedState,
    record_step,
)
from aigw.errors import AigwError, ExitCode
from aigw.storage.state import SQLiteState

T = TypeVar("T")
RETRY_EVERY_S = 1.0


class StateUnavailable(AigwError):
    """The shared state did not answer and nothing local may stand in for it."""

    def __init__(self, message: str, *, code: ExitCode = ExitCode.RATE_LIMITED):
        super().__init__(message, code=code, hint="docs/scaling.md: when Redis is down")


class Health:
    """Whether the shared state answers: said once when it stops, once when it answers again."""

    def __init__(
        self,
        shown_url: str,
        warn: Callable[[str], None],
        *,
        fail_closed: bool,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.shown_url = shown_url
        self.warn = warn
        self.fail_closed = fail_closed
        self.clock = clock
        self.down_since: float | None = None
        self.last_error = ""
        self._next_try = 0.0
        self.held_drops: set[str] = set()  # cache tags a write could not drop during an outage

    @property
    def mode(self) -> str:
        """`shared` while the shared state answers, `degraded` while it does not."""
        return "degraded" if self.down_since is not None else "shared"

    def worth_trying(self) -> bool:
        """Whether to ask the shared state now (while down: once per retry interval)."""
        return self.down_since is None or self.clock() >= self._next_try

    def failed(self, exc: BaseException) -> None:
        """Note a failed call: degraded from now, said once."""
        now = self.clock()
        self._next_try = now + RETRY_EVERY_S
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self.down_since is None:
            self.down_since = now
            limit = "refused (fail-closed)" if self.fail_closed else "per machine (fail-open)"
            self.warn(
                f"warning: the shared state at {self.shown_url} does not answer "
                f"({self.last_error}); serving from this machine's state until it does: "
                f"cache skipped, breaker per machine, rate limit {limit}"
            )

    def answered(self) -> bool:
        """Note an answer; True when it ends an outage."""
        if self.down_since is None:
            return False
        self.warn(
            f"the shared state at {self.shown_url} answers again after "
            f"{self.clock() - self.down_since:.1f} s; back to shared state"
        )
        self.down_since = None
        return True

    def take_held(self) -> list[str]:
        """The cache tags held back, to send before the next shared call (given back with
        `hold` when it fails): no shared call answers before the drops an outage held."""
        held, self.held_drops = self.held_drops, set()
        return sorted(held)

    def hold(self, tags: list[str]) -> None:
        """Keep invalidations Redis could not take, to send once it answers again."""
        self.held_drops.update(tags)

    def unsent(self, tags: list[str]) -> str:
        """The warning for invalidations that never reached the shared state."""
        return (
            f"warning: {len(tags)} cache invalidation(s) could not be sent to the shared state "
            f"at {self.shown_url}; other machines may serve those entries until they expire"
        )

    def rate_refusal(self) -> StateUnavailable:
        """The error a fail-closed rate limit raises while the shared state is down."""
        return StateUnavailable(
            f"the shared rate limit at {self.shown_url} does not answer ({self.last_error}) "
            "and AIGW_RATE_LIMIT_FALLBACK=fail-closed refuses calls until it does"
        )


_NOTHING: Any = object()


class FailoverState(SharedState):
    """SharedState over Redis (`shared`) that falls back to `local` (the CLI)."""

    def __init__(
        self,
        shared: SharedState,
        local: SharedState,
        health: Health,
        errors: tuple[type[BaseException], ...],
    ):
        self.shared = shared
        self.local = local
        self.health = health
        self.errors = errors

    @property
    def mode(self) -> str:
        """`shared` or `degraded`, as the health says."""
        return self.health.mode

    def _try(self, call: Callable[[SharedState], Any]) -> Any:
        """The shared state's answer, or _NOTHING when it does not answer."""
        if not self.health.worth_trying():
            return _NOTHING
        held = self.health.take_held()
        try:
            if held:
                self.shared.cache_drop(held)
            value = call(self.shared)
        except self.errors as exc:
            self.health.hold(held)
            self.health.failed(exc)
            return _NOTHING
        self.health.answered()
        return value

    def _admin(self, call: Callable[[SharedState], T]) -> T:
        """An operator's command: the shared state must answer."""
        try:
            return call(self.shared)
        except self.errors as exc:
            raise StateUnavailable(
                f"the shared state at {self.health.shown_url} does not answer "
                f"({type(exc).__name__}: {exc})",
                code=ExitCode.DATABASE,
            ) from None

    def cache_get(self, key: str) -> CacheEntry | None:
        after_outage = self.health.down_since is not None
        found = self._try(lambda s: s.cache_get(key))
        # The first read after an outage is a miss: a write elsewhere may not be dropped yet.
        return None if found is _NOTHING or after_outage else found

    def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        self._try(lambda s: s.cache_put(entry, keep_for=keep_for))

    def cache_drop(self, tags: list[str]) -> int:
        dropped = self._try(lambda s: s.cache_drop(tags))
        if dropped is _NOTHING:
            self.health.hold(tags)
            return 0
        return dropped

    def rate_take(self, name: str, rule: Gcra, now: float, *, reserve: bool) -> float:
        delay = self._try(lambda s: s.rate_take(name, rule, now, reserve=reserve))
        if delay is not _NOTHING:
            return delay
        if self.health.fail_closed:
            raise self.health.rate_refusal()
        return self.local.rate_take(name, rule, now, reserve=reserve)

    def rate_pause(self, name: str, until: float, now: float) -> None:
        if self._try(lambda s: s.rate_pause(name, until, now)) is _NOTHING:
            self.local.rate_pause(name, until, now)

    def rate_reset(self) -> int:
        return self.local.rate_reset() + self._admin(lambda s: s.rate_reset())

    def breaker_get(self, host: str) -> BreakerRow | None:
        row = self._try(lambda s: s.breaker_get(host))
        return self.local.breaker_get(host) if row is _NOTHING else row

    def breaker_all(self) -> list[BreakerRow]:
        return self._admin(lambda s: s.breaker_all())

    def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        row = self._try(lambda s: s.breaker_claim(host, now, rule))
        return self.local.breaker_claim(host, now, rule) if row is _NOTHING else row

    def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        done = self._try(lambda s: s.breaker_record(host, now, rule, failure=failure, error=error))
        if done is _NOTHING:
            self.local.breaker_record(host, now, rule, failure=failure, error=error)

    def breaker_reset(self, host: str | None = None) -> int:
        self.local.breaker_reset(host)
        return self._admin(lambda s: s.breaker_reset(host))

    def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        found = self._try(lambda s: s.remembered_key(scope))
        return self.local.remembered_key(scope) if found is _NOTHING else found

    def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        if self._try(lambda s: s.remember_key(scope, fingerprint, announced=announced)) is _NOTHING:
            self.local.remember_key(scope, fingerprint, announced=announced)

    def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        found = self._try(
            lambda s: s.idempotency_key(fingerprint, proposed, now, retry=retry, keep_for=keep_for)
        )
        if found is _NOTHING:
            return self.local.idempotency_key(
                fingerprint, proposed, now, retry=retry, keep_for=keep_for
            )
        return found

    def close(self) -> None:
        """One last try to send the cache drops an outage held (a command that wrote while
        Redis was down), then close both."""
        held = self.health.take_held()
        try:
            if held:
                self.shared.cache_drop(held)
        except self.errors:
            self.health.warn(self.health.unsent(held))
        finally:
            self.shared.close()
            self.local.close()


class AsyncFailoverState(AsyncSharedState):
    """AsyncSharedState over Redis (`shared`) that falls back to `local` (the server)."""

    def __init__(
        self,
        shared: AsyncSharedState,
        local: SQLiteState,
        health: Health,
        errors: tuple[type[BaseException], ...],
    ):
        self.shared = shared
        self.local = local
        self.health = health
        self.errors = errors

    @property
    def mode(self) -> str:
        """`shared` or `degraded`, as the health says."""
        return self.health.mode

    async def _try(self, call: Callable[[AsyncSharedState], Awaitable[Any]]) -> Any:
        if not self.health.worth_trying():
            return _NOTHING
        held = self.health.take_held()
        try:
            if held:
                await self.shared.cache_drop(held)
            value = await call(self.shared)
        except self.errors as exc:
            self.health.hold(held)
            self.health.failed(exc)
            return _NOTHING
        except BaseException:  # cancelled mid-call: the drops must still go out later
            self.health.hold(held)
            raise
        self.health.answered()
        return value

    async def cache_get(self, key: str) -> CacheEntry | None:
        after_outage = self.health.down_since is not None
        found = await self._try(lambda s: s.cache_get(key))
        return None if found is _NOTHING or after_outage else found

    async def cache_put(self, entry: CacheEntry, *, keep_for: float) -> None:
        await self._try(lambda s: s.cache_put(entry, keep_for=keep_for))

    async def cache_drop(self, tags: list[str]) -> int:
        dropped = await self._try(lambda s: s.cache_drop(tags))
        if dropped is _NOTHING:
            self.health.hold(tags)
            return 0
        return dropped

    async def admit(
        self, buckets: Sequence[tuple[str, Gcra]], now: float, key: str | None
    ) -> Admission:
        after_outage = self.health.down_since is not None
        found = await self._try(lambda s: s.admit(buckets, now, key))
        if found is not _NOTHING:
            return Admission(found.wait, found.refused_by) if after_outage else found
        if self.health.fail_closed and buckets:
            raise self.health.rate_refusal()
        return self.local.admit(buckets, now, None)  # the local buckets; no cache for now

    async def rate_pause(self, name: str, until: float, now: float) -> None:
        if await self._try(lambda s: s.rate_pause(name, until, now)) is _NOTHING:
            self.local.rate_pause(name, until, now)

    async def breaker_get(self, host: str) -> BreakerRow | None:
        row = await self._try(lambda s: s.breaker_get(host))
        return self.local.breaker_get(host) if row is _NOTHING else row

    async def breaker_claim(self, host: str, now: float, rule: BreakerRule) -> BreakerRow | None:
        row = await self._try(lambda s: s.breaker_claim(host, now, rule))
        return self.local.breaker_claim(host, now, rule) if row is _NOTHING else row

    async def breaker_record(
        self, host: str, now: float, rule: BreakerRule, *, failure: bool, error: str | None
    ) -> None:
        done = await self._try(
            lambda s: s.breaker_record(host, now, rule, failure=failure, error=error)
        )
        if done is _NOTHING:
            self.local.breaker_record(host, now, rule, failure=failure, error=error)

    async def remembered_key(self, scope: str) -> tuple[str, bool] | None:
        found = await self._try(lambda s: s.remembered_key(scope))
        return self.local.remembered_key(scope) if found is _NOTHING else found

    async def remember_key(self, scope: str, fingerprint: str, *, announced: bool) -> None:
        done = await self._try(lambda s: s.remember_key(scope, fingerprint, announced=announced))
        if done is _NOTHING:
            self.local.remember_key(scope, fingerprint, announced=announced)

    async def idempotency_key(
        self, fingerprint: str, proposed: str, now: float, *, retry: bool, keep_for: float
    ) -> str:
        found = await self._try(
            lambda s: s.idempotency_key(fingerprint, proposed, now, retry=retry, keep_for=keep_for)
        )
        if found is _NOTHING:
            return self.local.idempotency_key(
                fingerprint, proposed, now, retry=retry, keep_for=keep_for
            )
        return found

    async def settle(self) -> None:
        """Nothing is kept back: each call goes to Redis, or to the local state, at once."""

    async def close(self) -> None:
        """One last try to send the cache drops an outage held, then close the client."""
        held = self.health.take_held()
        try:
            if held:
                await self.shared.cache_drop(held)
        except self.errors:
            self.health.warn(self.health.unsent(held))
        finally:
            await self.shared.close()


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
    workers counted; anything else (a failure, a circuit not closed) is decided in the
    store's own transaction.
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

    async def cache_get(self, key: str) -> CacheEntry | None:
        return self.local.cache_get(key)

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

    async def rate_pause(self, name: str, until: float, now: float) -> None:
        self._leases.pop(name, None)
        self.local.rate_pause(name, until, now)

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
