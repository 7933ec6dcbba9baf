"""Retry with backoff, the CLI's face: the decisions are gateway/policies/retry.py's (shared with
the server); this layer makes the attempts, sleeps and says why (the SDK's own retry is off).

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
import time
import uuid
from collections.abc import Callable

from aigw.common.log_record import new_id
from aigw.errors import AigwError, ExitCode
from aigw.gateway import Clock
from aigw.gateway.http import (
    BaseTransport,
    ConnectError,
    ConnectTimeout,
    Request,
    Response,
    TransportError,
    is_upstream_failure,
)
from aigw.gateway.policies.idempotency import HEADER as IDEMPOTENCY_HEADER
from aigw.gateway.policies.retry import (
    BEYOND_BUDGET,
    RETRY,
    RetryPolicy,
)
from aigw.gateway.transports import Layer
from aigw.gateway.transports.logging import ATTEMPT, CALL_ID, tag_attempt


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
        retries = self.policy.start(self.clock.now())
        while True:
            tag_attempt(request, call_id, first + retries.made)
            try:
                response = self.inner.handle_request(request)
            except TransportError as error:
                # A local problem would fail the same way again; a streamed POST may have
                # started a run unless the connection was never made.
                retryable = is_upstream_failure(error) and (not streamed or never_sent(error))
                step = retries.after_error(self.clock.now(), retryable=retryable)
                if step.action != RETRY:
                    raise
                reason = type(error).__name__
            else:
                status = response.status_code
                step = retries.after_answer(status, response.headers, self.clock.now())
                if step.action == BEYOND_BUDGET:
                    response.close()
                    raise self._beyond_budget(status, step.delay)
                if step.action != RETRY:
                    return response  # a success, or a failure with no retry left
                response.close()
                reason = str(status)
            self.on_retry(
                f"retrying in {step.delay:.1f} s — {reason} from {_host(request)} "
                f"(attempt {first + retries.made} of {first + self.policy.max_retries})"
            )
            self.clock.sleep(step.delay)

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
