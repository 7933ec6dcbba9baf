"""BreakerTransport: the circuit breaker as a transport layer, asking the policy per attempt.

The policy itself (`CircuitBreaker`, state names, `host_of`) lives in aigw/gateway/circuit.py,
free of HTTP imports so that `preflight` can refuse before httpx2 or the SDK is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

from aigw.gateway.circuit import CircuitBreaker, host_of
from aigw.gateway.http import BaseTransport, Request, Response, is_upstream_failure
from aigw.gateway.policies.retry import is_upstream_failure_status
from aigw.gateway.transports import Layer


class BreakerTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        breaker: CircuitBreaker,
        *,
        force: Callable[[], bool] = lambda: False,
    ):
        super().__init__(inner)
        self.breaker = breaker
        self.force = force

    def handle_request(self, request: Request) -> Response:
        host = host_of(str(request.url))
        if not self.force():
            error = self.breaker.refusal(host, claim=True)
            if error is not None:
                raise error
        try:
            response = self.inner.handle_request(request)
        except BaseException as exc:
            if is_upstream_failure(exc):
                self.breaker.record(host, failure=True, error=type(exc).__name__)
            else:
                # Not the upstream's fault, so not counted; but a half-open probe that ends
                # this way proved nothing: it fails, so the circuit never stays half-open.
                self.breaker.end_probe(host, error=type(exc).__name__)
            raise
        status = response.status_code
        self.breaker.record(
            host, failure=is_upstream_failure_status(status), error=f"HTTP {status}"
        )
        return response
