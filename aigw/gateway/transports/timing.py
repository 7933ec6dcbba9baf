"""TimingTransport: times each HTTP attempt and hands a CallTiming to a sink."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aigw.gateway.http import BaseTransport, Request, Response
from aigw.gateway.transports.base import Layer


@dataclass(frozen=True)
class CallTiming:
    method: str
    url: str
    status_code: int | None  # None when no response came back (network error)
    latency_ms: float
    error: str | None = None


class TimingTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        sink: Callable[[CallTiming], None],
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(inner)
        self.sink = sink
        self.clock = clock

    def handle_request(self, request: Request) -> Response:
        started = self.clock()
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            self._emit(request, None, started, f"{type(exc).__name__}: {exc}")
            raise
        # Latency to the response headers: streamed bodies (SSE) are not waited for here.
        self._emit(request, response.status_code, started, None)
        return response

    def _emit(
        self, request: Request, status: int | None, started: float, error: str | None
    ) -> None:
        latency = (self.clock() - started) * 1000
        self.sink(CallTiming(request.method, str(request.url), status, latency, error))
