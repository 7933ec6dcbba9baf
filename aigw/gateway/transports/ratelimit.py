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

import re
from collections.abc import Callable

from aigw.common.state import MAX_SHARED_PAUSE, Gcra, SharedState
from aigw.errors import AigwError, ExitCode
from aigw.gateway.clock import Clock
from aigw.gateway.http import BaseTransport, Request, Response
from aigw.gateway.transports.base import Layer
from aigw.gateway.transports.retry import retry_after_seconds

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+?)s?\s*$")


def parse_rate(spec: str) -> tuple[int, float]:
    """`60/min` → (60, 60.0); also `10/s`, `1000/hour`, `5/10s`."""
    found = _RATE.match(spec.lower())
    unit = found and (_UNITS.get(found.group(3)) or _UNITS.get(found.group(3) + "s"))
    if not found or not unit or int(found.group(1)) < 1:
        raise AigwError(
            f"invalid AIGW_RATE_LIMIT {spec!r}",
            code=ExitCode.CONFIG,
            hint="use COUNT/PERIOD, e.g. 60/min, 10/s, 1000/hour or 5/10s",
        )
    multiple = float(found.group(2)) if found.group(2) else 1.0
    return int(found.group(1)), multiple * unit


def gcra_of(spec: str) -> Gcra:
    """The GCRA rule of a rate: a full bucket lets `count` calls through at once, then one per
    interval."""
    count, period = parse_rate(spec)
    interval = period / count
    return Gcra(interval, period - interval)


def pause_until(rule: Gcra, now: float, seconds: float) -> float:
    """The bucket time that keeps every slot closed for `seconds` (at most MAX_SHARED_PAUSE)."""
    return now + min(seconds, MAX_SHARED_PAUSE) + rule.tolerance


class RateLimiter:
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

    def take(self) -> float:
        """Take a slot if one is free now: 0.0. Else the seconds until one is, taking none
        (the gateway server answers 429 with them instead of holding the request)."""
        return self.store.rate_take(self.name, self.rule, self.clock.now(), reserve=False)

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
