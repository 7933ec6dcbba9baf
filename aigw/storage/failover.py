"""The shared state as processes use it: the local SQLite state, or Redis (AIGW_STATE_URL)
with a fall-back to the local state while Redis does not answer.

While Redis does not answer (an error or AIGW_STATE_TIMEOUT), aigw keeps serving: the cache
is skipped, the breaker and remembered keys use this machine's SQLite state, and the rate
limit does too (AIGW_RATE_LIMIT_FALLBACK=fail-open, the default) or refuses
(fail-closed). One warning says so; Redis is tried again at most once a second, and the
first answer ends the outage (one more line). The cache drops a write could not send are
held and go before any other call to Redis (kept when they fail again, tried once more when
the state closes); the first cache read after an outage is a miss. The local state behind
the server's event loop is aigw/storage/local_async.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aigw.common.state import (
    Admission,
    AsyncSharedState,
    BreakerRow,
    BreakerRule,
    CacheEntry,
    Gcra,
    SharedState,
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
