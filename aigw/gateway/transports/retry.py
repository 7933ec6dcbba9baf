"""Retry with backoff: the one retry policy of aigw (the SDK's own is off, max_retries=0).

Retried: 429, 5xx, timeouts and connection errors — up to AIGW_MAX_RETRIES (3) more attempts.
Never other 4xx: the same request would fail the same way. Waits: exponential backoff
1 s, 2 s, 4 s… capped at 10 s, with jitter (so many clients do not retry in step), unless
the answer says how long (`retry-after-ms`, then `Retry-After` in seconds or as an HTTP date),
which is honoured exactly. The waits of one call add up to at most AIGW_RETRY_BUDGET (30 s):
an answer asking for more fails at once, saying when to try again (exit 7); an absurd one
(inf, 1e20) is clamped first. The call as a whole ends by its deadline, every attempt at its
longest plus the budget: (1 + AIGW_MAX_RETRIES) × AIGW_TIMEOUT + AIGW_RETRY_BUDGET. Local
errors (a header value HTTP cannot carry) are never retried.

Unlike the seed's `callWithRetry` (3 *attempts*, and a useless sleep after the last one), aigw
makes 1 + max_retries attempts and never waits after the last. Creating POSTs get an
`Idempotency-Key` set once, before the first attempt, so every retry carries the same key and
the upstream can answer a repeat with the first result instead of making a second object.
A streamed POST (`"stream": true`, e.g. `runs create --wait`) is retried after a transport error
only when the request surely never reached the upstream (the connection was never made): once
its events may have begun, a second attempt could start a second run.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from aigw.errors import AigwError, ExitCode
from aigw.gateway.clock import Clock
from aigw.gateway.http import (
    BaseTransport,
    ConnectError,
    ConnectTimeout,
    Headers,
    Request,
    Response,
    TransportError,
    is_upstream_failure,
    is_upstream_failure_status,
)
from aigw.gateway.transports.base import Layer
from aigw.gateway.transports.logging import ATTEMPT, CALL_ID, tag_attempt
from aigw.storage.base import new_id

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Longer than any retry budget: a Retry-After past it (inf, 1e20, a date in 3000) is clamped
# here, so that no later arithmetic or clock formatting meets an absurd number.
MAX_RETRY_AFTER = 86_400.0


def _seconds(text: str, scale: float = 1.0) -> float | None:
    try:
        value = float(text) / scale
    except ValueError:
        return None
    if value != value:  # NaN
        return None
    return min(max(0.0, value), MAX_RETRY_AFTER)


def retry_after_seconds(headers: Headers, now: float) -> float | None:
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


def is_retryable_status(status: int) -> bool:
    return is_upstream_failure_status(status)


def is_streamed(request: Request) -> bool:
    """Whether the request asks for a server-sent-event stream (`"stream": true` in its body)."""
    try:
        body = request.content
    except Exception:  # a streamed upload: not a JSON body of ours
        return False
    if b'"stream"' not in body:
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


def never_sent(error: TransportError) -> bool:
    """The connection was never made, so the upstream cannot have seen the request."""
    return isinstance(error, ConnectError | ConnectTimeout)


class RetryPolicy:
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


class RetryTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        policy: RetryPolicy,
        *,
        clock: Clock | None = None,
        on_retry: Callable[[str], None] = lambda message: None,
    ):
        super().__init__(inner)
        self.policy = policy
        self.clock = clock or Clock()
        self.on_retry = on_retry  # a waiting person deserves to know why nothing happens

    def handle_request(self, request: Request) -> Response:
        call_id = str(request.extensions.get(CALL_ID) or new_id())
        if request.method == "POST" and IDEMPOTENCY_HEADER not in request.headers:
            request.headers[IDEMPOTENCY_HEADER] = f"aigw-{uuid.uuid4()}"
        # Continue the numbering when an outer layer (key rotation) sends the call again.
        first = int(request.extensions.get(ATTEMPT, 0)) + 1
        streamed = request.method == "POST" and is_streamed(request)
        waited = 0.0
        retry = 0
        deadline = self.policy.call_deadline(self.clock.now())
        while True:
            tag_attempt(request, call_id, first + retry)
            can_retry = retry < self.policy.max_retries
            try:
                response = self.inner.handle_request(request)
            except TransportError as error:
                reason = type(error).__name__
                if not is_upstream_failure(error):
                    raise  # a local problem: the same request would fail the same way
                delay = self.policy.backoff(retry + 1)
                if not can_retry or self._overruns(waited, delay, deadline):
                    raise
                if streamed and not never_sent(error):
                    raise
            else:
                if not is_upstream_failure_status(response.status_code):
                    return response
                asked_for = retry_after_seconds(response.headers, self.clock.now())
                if asked_for is not None and waited + asked_for > self.policy.budget:
                    response.close()
                    raise self._beyond_budget(response.status_code, asked_for)
                delay = asked_for if asked_for is not None else self.policy.backoff(retry + 1)
                if not can_retry or self._overruns(waited, delay, deadline):
                    return response  # stop with this answer
                response.close()
                reason = str(response.status_code)
            self.on_retry(
                f"retrying in {delay:.1f} s — {reason} from {_host(request)} "
                f"(attempt {first + retry + 1} of {first + self.policy.max_retries})"
            )
            self.clock.sleep(delay)
            waited += delay
            retry += 1

    def _overruns(self, waited: float, delay: float, deadline: float | None) -> bool:
        """Whether waiting `delay` more would pass the budget or the call's deadline."""
        if waited + delay > self.policy.budget:
            return True
        return deadline is not None and self.clock.now() + delay >= deadline

    def _beyond_budget(self, status: int, delay: float) -> AigwError:
        at = time.strftime("%H:%M:%S", time.localtime(self.clock.now() + delay))
        return AigwError(
            f"upstream answered {status} and asks to retry after {delay:.0f} s (at {at}), "
            f"beyond the retry budget of {self.policy.budget:g} s",
            code=ExitCode.RATE_LIMITED,
            hint=f"try again after {at}; AIGW_RETRY_BUDGET sets how long aigw may wait",
        )


def _host(request: Request) -> str:
    url = request.url
    return f"{url.host}:{url.port}" if url.port else str(url.host)
