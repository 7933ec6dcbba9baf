"""LoggingTransport: the facts of every HTTP attempt (storage/attempts.py), handed to a sink
(the local outbox, which has them on disk before the call returns and makes the log row later).

How other layers talk to this one — through extensions, never through headers, so nothing
extra goes over the wire:
  * a layer OUTSIDE (retry) marks each attempt of one logical call with
    `request.extensions[CALL_ID]` (a UUID string shared by the attempts) and
    `request.extensions[ATTEMPT]` (1, 2, …) — see `tag_attempt`. Without them, every request
    is its own call with attempt 1.
  * a layer INSIDE (cache) says how it answered with `response.extensions[CACHE_STATUS]`
    ("hit", "miss", "bypass"); it lands in the row's `cache_status`.
A layer inside that refuses a call by raising (circuit open, rate limited) still gets a row:
no status code, the error message, and the latency of the refusal.

What is read: the request body (JSON, when it is small) and, unless the response is a
server-sent-event stream, the response body — read here, so the latency covers the whole
body. A stream is passed through as it arrives and timed to its headers; its row is made when
it ends or is closed (at the latest when this layer closes), with the model, IDs and token
usage of the last run object it carried (policies/sse.py) — so a streamed run's cost counts.
Payloads are stored only with AIGW_LOG_PAYLOADS, and then redacted first. Building a record
can never fail the call: any surprise becomes a minimal row instead.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from aigw.gateway.endpoints import COLLECTIONS
from aigw.gateway.http import BaseTransport, Request, Response, SyncByteStream, headers_named
from aigw.gateway.policies.logrow import answer_error_text, body_facts, storable
from aigw.gateway.policies.sse import RunEventWatcher
from aigw.gateway.transports.base import Layer
from aigw.redact import Redactor
from aigw.storage.attempts import FORMAT, Attempt

CALL_ID = "aigw.call_id"
ATTEMPT = "aigw.attempt"
CACHE_STATUS = "aigw.cache_status"
MAX_PARSED_BYTES = 1 << 20  # larger bodies are not parsed for IDs, model or usage

_READ_HEADERS = (b"content-type", b"x-request-id")
_NOTHING: dict[str, Any] = {}  # an absent body: every .get() is None


def tag_attempt(request: Request, call_id: str, attempt: int) -> None:
    """For the retry layer: mark `request` as attempt `attempt` of logical call `call_id`."""
    request.extensions[CALL_ID] = call_id
    request.extensions[ATTEMPT] = attempt


def _json(body: bytes | None) -> Any:
    """A request body we sent, parsed (None if it is not JSON or too large to bother)."""
    if not body or len(body) > MAX_PARSED_BYTES:
        return None
    try:
        return orjson.loads(body)
    except ValueError:  # orjson refuses integers past 64 bits and lone surrogates
        pass
    try:
        return storable(json.loads(body))
    except ValueError:
        return None


class _SharedParse:
    """`response.json` for a body the logging layer has parsed already: the SDK reads the
    response once, through `response.json()`, and gets this parse instead of making its own.
    Parsing a body cost ~20 µs in the middle of a call (the SDK's own parse is part of every
    call, logged or not); done once for both, logging adds none of it. Same function and
    result as httpx2's Response.json (the standard library's json.loads of the content)."""

    __slots__ = ("body", "value")

    def __init__(self, body: bytes, value: Any):
        self.body = body
        self.value = value

    def __call__(self, **kwargs: Any) -> Any:
        return self.value if not kwargs else json.loads(self.body, **kwargs)


def _response_json(response: Response, body: bytes) -> Any:
    """The response body, parsed as `response.json()` would, and kept for it (_SharedParse)."""
    if not body or len(body) > MAX_PARSED_BYTES:
        return None
    try:
        value = json.loads(body)
    except ValueError:  # not JSON (UnicodeDecodeError is a ValueError too)
        return None
    with contextlib.suppress(AttributeError):  # a Response type that will not take it
        response.json = _SharedParse(body, value)  # type: ignore[method-assign]
    return value


class LoggingTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        sink: Callable[[tuple[Any, ...]], None],
        *,
        route: str | None = None,
        user_id: str | None = None,
        redactor: Redactor | None = None,
        log_payloads: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(inner)
        self.sink = sink
        self.route = route
        self.user_id = user_id
        self.redactor = redactor or Redactor()
        self.log_payloads = log_payloads
        self.clock = clock
        self._streams: set[_WatchedStream] = set()  # streams whose row is not made yet
        self._streams_lock = threading.Lock()

    def handle_request(self, request: Request) -> Response:
        started_ns = time.time_ns()
        started = self.clock()
        try:
            response = self.inner.handle_request(request)
            content_type, request_id = headers_named(response.headers, _READ_HEADERS)
            streamed = content_type.startswith("text/event-stream")
            body = None if streamed else response.read()
        except Exception as exc:
            latency = (self.clock() - started) * 1000
            self._emit(request, None, None, None, started_ns, latency, exc)
            raise
        latency = (self.clock() - started) * 1000
        answer_id = request_id or None
        if streamed:

            def emit(run: dict[str, Any] | None) -> None:
                self._emit(request, response, None, answer_id, started_ns, latency, None, run)

            self._watch(response, emit)
            return response
        self._emit(request, response, body, answer_id, started_ns, latency, None)
        return response

    def _watch(self, response: Response, emit: Callable[[dict[str, Any] | None], None]) -> None:
        """Pass the stream on through a watcher; its row is made once, when it ends."""

        def ended(stream: _WatchedStream) -> None:
            with self._streams_lock:
                self._streams.discard(stream)
            emit(stream.watcher.run)

        watched = _WatchedStream(response.stream, ended)  # type: ignore[arg-type]
        with self._streams_lock:
            self._streams.add(watched)
        response.stream = watched

    def close(self) -> None:
        """Rows for streams nobody finished reading (with what they carried so far), then the
        layers below."""
        with self._streams_lock:
            open_streams = list(self._streams)
        for stream in open_streams:
            stream.end()
        super().close()

    def _emit(
        self,
        request: Request,
        response: Response | None,
        body: bytes | None,
        request_id: str | None,
        started_ns: int,
        latency: float,
        error: BaseException | None,
        streamed_run: dict[str, Any] | None = None,
    ) -> None:
        status = response.status_code if response is not None else None
        try:
            facts = self._attempt(
                request, response, body, request_id, started_ns, latency, error, streamed_run
            )
        except Exception as exc:  # never let logging fail the call: keep what is certain
            facts = tuple(
                Attempt(
                    FORMAT,
                    started_ns,
                    latency,
                    request.method,
                    request.url.path,
                    status_code=status,
                    route=self.route,
                    user_id=self.user_id,
                    error_message=f"aigw could not build this log row: {type(exc).__name__}",
                )
            )
        with contextlib.suppress(Exception):  # the sink keeps what it could not write
            self.sink(facts)

    def _attempt(
        self,
        request: Request,
        response: Response | None,
        body: bytes | None,
        request_id: str | None,
        started_ns: int,
        latency: float,
        error: BaseException | None,
        streamed_run: dict[str, Any] | None = None,
    ) -> tuple[Any, ...]:
        """The attempt's facts, in storage.attempts.Attempt's order (a plain tuple: cheaper).
        `streamed_run`: the last run object of a server-sent-event answer, as its body."""
        method = request.method
        path = request.url.path
        sent = _json(_request_body(request)) if method != "GET" else None
        # A GET of a collection: its body has nothing a row needs (and may be large).
        listing = method == "GET" and path.rstrip("/").rsplit("/", 1)[-1] in COLLECTIONS
        got = None
        if response is not None and body is not None and not listing:
            got = _response_json(response, body)
        if got is None and self.log_payloads and body is not None:
            got = _json(body)
        if streamed_run is not None:
            got = streamed_run
        got_obj = got if isinstance(got, dict) else _NOTHING
        extensions = request.extensions
        payloads = self.log_payloads
        return (
            FORMAT,
            started_ns,
            latency,
            method,
            path,
            response.status_code if response is not None else None,
            request_id,
            extensions.get(CALL_ID),
            extensions.get(ATTEMPT),
            self.route,
            self.user_id,
            response.extensions.get(CACHE_STATUS) if response is not None else None,
            self._error_message(error, response, got_obj),
            *body_facts(sent, got),
            self.redactor.payload(sent) if payloads and sent is not None else None,
            # (a copy: `got` is the SDK's too, and must reach it as it came)
            self.redactor.payload(storable(got)) if payloads and got is not None else None,
        )

    def _error_message(
        self, error: BaseException | None, response: Response | None, got: dict[str, Any]
    ) -> str | None:
        if error is not None:
            message = f"{type(error).__name__}: {error}"
        elif response is not None:
            found = answer_error_text(response.status_code, got)
            if found is None:
                return None
            message = found
        else:
            return None
        return self.redactor.text(message)[:2000]  # error text may echo the input back


class _WatchedStream(SyncByteStream):
    """A response stream passed on chunk by chunk through a RunEventWatcher; `on_end` is called
    once, when the stream is exhausted, fails, is closed or is ended by its layer's close."""

    def __init__(self, inner: SyncByteStream, on_end: Callable[[_WatchedStream], None]):
        self.inner = inner
        self.on_end = on_end
        self.watcher = RunEventWatcher()
        self._ended = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                with contextlib.suppress(Exception):  # watching must never fail the stream
                    self.watcher.feed(chunk)
                yield chunk
        finally:
            self.end()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.end()

    def end(self) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.on_end(self)


def _request_body(request: Request) -> bytes | None:
    try:
        return request.content
    except Exception:  # a streamed upload: not read here, it belongs to the network layer
        return None
