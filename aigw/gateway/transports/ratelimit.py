"""Client-side rate limit (`AIGW_RATE_LIMIT`, e.g. `60/min`) shared by every aigw process.

A GCRA bucket ("generic cell rate algorithm", the token bucket kept as one number: the
theoretical arrival time) in the shared state, read and moved in one atomic step
(aigw/common/state.py), so concurrent processes take distinct slots. A caller over the limit
reserves the next free slot and waits for it (fair: first come, first served across
processes), or, with --no-wait, fails at once. A 429 pushes the bucket back by its
Retry-After, so every process slows down, not only the one that was told — by at most
MAX_SHARED_PAUSE (10 min): an upstream asking for a day must not lock every process out for
a day (the call that was told fails with exit 7 instead; `aigw breaker reset` clears a
pause).
"""

from __future__ import annotations

from collections.abc import Callable

from aigw.common.state import SharedState
from aigw.errors import AigwError, ExitCode
from aigw.gateway import Clock
from aigw.gateway.http import BaseTransport, Request, Response
from aigw.gateway.policies.ratelimit import gcra_of, pause_until
from aigw.gateway.policies.retry import retry_after_seconds
from aigw.gateway.transports import Layer


class RateLimiter:
    """One named rate (e.g. `60/min`) over the shared state: waits or refuses."""

    def __init__(
        self, store: SharedState, spec: str, *, clock: Clock | None = None, name: str = "upstream"
    ):
        self.store = store
        self.spec = spec
        self.rule = gcra_of(spec)
        self.clock = clock or Clock()
        self.name = name

    def acquire(self, *, wait: bool) -> float:
        """Take a slot; the seconds to wait before using it. Raises when over and not `wait`."""
        delay = self.store.rate_take(self.name, self.rule, self.clock.now(), reserve=wait)
        if delay > 0 and not wait:
            raise AigwError(
                f"over the rate limit AIGW_RATE_LIMIT={self.spec}; next slot in {delay:.1f} s",
                code=ExitCode.RATE_LIMITED,
                hint="run again later, or without --no-wait to wait for the slot",
            )
        return delay

    def pause(self, seconds: float) -> None:
        """No slot for anyone before now + seconds (an upstream 429's Retry-After), at most
        MAX_SHARED_PAUSE from now."""
        now = self.clock.now()
        self.store.rate_pause(self.name, pause_until(self.rule, now, seconds), now)


class RateLimitTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        limiter: RateLimiter,
        *,
        no_wait: Callable[[], bool] = lambda: False,
        on_wait: Callable[[float], None] = lambda seconds: None,
    ):
        super().__init__(inner)
        self.limiter = limiter
        self.no_wait = no_wait
        self.on_wait = on_wait

    def handle_request(self, request: Request) -> Response:
        delay = self.limiter.acquire(wait=not self.no_wait())
        if delay > 0:
            self.on_wait(delay)
            self.limiter.clock.sleep(delay)
        response = self.inner.handle_request(request)
        if response.status_code == 429:
            pause = retry_after_seconds(response.headers, self.limiter.clock.now())
            if pause:
                self.limiter.pause(pause)
        return response
