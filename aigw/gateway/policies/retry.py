"""Retry with backoff, as a sans-I/O core: after each attempt the caller reports what happened
and is told whether to try again and how long to wait first. The CLI's RetryTransport and the
server's proxy both drive one `Retries` per call; neither decides anything of its own.

Retried: 429, 5xx, timeouts and connection errors, up to `max_retries` more attempts. Waits:
exponential backoff 1 s, 2 s, 4 s… capped at 10 s, with jitter (so many clients do not retry in
step), unless the answer says how long (`retry-after-ms`, then `Retry-After` in seconds or as
an HTTP date), which is honoured exactly. The waits of one call add up to at most `budget`; an
answer asking for more ends the retries at once (BEYOND_BUDGET, so the caller can say when to
try again); an absurd one (inf, 1e20) is clamped first. With `attempt_timeout`, the call as a
whole also ends by its deadline: every attempt at its longest plus the budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Literal, NamedTuple, Protocol

# Longer than any retry budget: a Retry-After past it (inf, 1e20, a date in 3000) is clamped
# here, so that no later arithmetic or clock formatting meets an absurd number.
MAX_RETRY_AFTER = 86_400.0


def is_upstream_failure_status(status: int) -> bool:
    """Statuses that mean the upstream is failing or overloaded: 429 and 5xx."""
    return status == 429 or status >= 500


ACCEPT: Literal["accept"] = "accept"  # not a failure: the answer is the call's
RETRY: Literal["retry"] = "retry"  # wait `delay`, then attempt again
GIVE_UP: Literal["give_up"] = "give_up"  # a failure, but no retry left (or not retryable)
BEYOND_BUDGET: Literal["beyond_budget"] = "beyond_budget"  # the answer asks for a longer wait


class HeaderValues(Protocol):
    def get(self, name: str, /) -> str | None:
        """The header's value, or None."""


def _seconds(text: str, scale: float = 1.0) -> float | None:
    try:
        value = float(text) / scale
    except ValueError:
        return None
    if value != value:  # NaN
        return None
    return min(max(0.0, value), MAX_RETRY_AFTER)


def retry_after_seconds(headers: HeaderValues, now: float) -> float | None:
    """Seconds the answer asks us to wait: `retry-after-ms`, else `Retry-After`; None if neither."""
    millis = headers.get("retry-after-ms")
    if millis and (found := _seconds(millis, 1000)) is not None:
        return found
    value = headers.get("retry-after")
    if not value:
        return None
    if (found := _seconds(value)) is not None:
        return found
    try:
        return min(max(0.0, parsedate_to_datetime(value).timestamp() - now), MAX_RETRY_AFTER)
    except (TypeError, ValueError, OverflowError):
        return None


class RetryPolicy:
    """The configured limits (AIGW_MAX_RETRIES, AIGW_RETRY_BUDGET, AIGW_TIMEOUT) and the backoff."""

    def __init__(
        self,
        max_retries: int = 3,
        budget: float = 30.0,
        *,
        base: float = 1.0,
        cap: float = 10.0,
        jitter: Callable[[], float] = random.random,
        attempt_timeout: float | None = None,
    ):
        self.max_retries = max_retries
        self.budget = budget
        # With it, a call's total deadline: every attempt at its longest, plus the budget.
        self.attempt_timeout = attempt_timeout
        self.base = base
        self.cap = cap
        self.jitter = jitter

    def call_deadline(self, started: float) -> float | None:
        """When the whole call, retries included, must be over (None: no deadline)."""
        if self.attempt_timeout is None:
            return None
        return started + self.budget + (1 + self.max_retries) * self.attempt_timeout

    def backoff(self, retry: int) -> float:
        """Wait before retry number `retry` (1-based): 1, 2, 4… capped, times 0.5–1.0."""
        full = min(self.cap, self.base * 2 ** (retry - 1))
        return full * (0.5 + 0.5 * self.jitter())

    def start(self, now: float, *, retries: int | None = None) -> Retries:
        """The retry decisions of one call starting at `now`; `retries` lowers the allowance
        (0: a client that retries on its own gets none of ours on top)."""
        return Retries(self, now, self.max_retries if retries is None else retries)


class Next(NamedTuple):
    action: Literal["accept", "retry", "give_up", "beyond_budget"]
    delay: float = 0.0  # RETRY: the wait before the next attempt; BEYOND_BUDGET: the one asked


class Retries:
    """One call's retries: how many were made and how long was waited."""

    def __init__(self, policy: RetryPolicy, started: float, allowed: int):
        self.policy = policy
        self.allowed = allowed
        self.deadline = policy.call_deadline(started)
        self.made = 0  # retries so far
        self.waited = 0.0

    def after_answer(self, status: int, headers: HeaderValues, now: float) -> Next:
        """An answer arrived: accept it, or retry a 429/5xx after the wait it asks for (else
        the backoff)."""
        if not is_upstream_failure_status(status):
            return Next(ACCEPT)
        asked = retry_after_seconds(headers, now)
        if asked is not None and self.waited + asked > self.policy.budget:
            return Next(BEYOND_BUDGET, asked)
        return self._again(asked if asked is not None else self.policy.backoff(self.made + 1), now)

    def after_error(self, now: float, *, retryable: bool = True) -> Next:
        """No answer (a timeout, a connection error): retry after the backoff unless the error
        is not one a second attempt could fix (`retryable=False`)."""
        if not retryable:
            return Next(GIVE_UP)
        return self._again(self.policy.backoff(self.made + 1), now)

    def _again(self, delay: float, now: float) -> Next:
        if self.made >= self.allowed or self.waited + delay > self.policy.budget:
            return Next(GIVE_UP, delay)
        if self.deadline is not None and now + delay >= self.deadline:
            return Next(GIVE_UP, delay)
        self.made += 1
        self.waited += delay
        return Next(RETRY, delay)
