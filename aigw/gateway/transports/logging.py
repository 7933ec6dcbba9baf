"""LoggingTransport: one log row (LogRecord) for every HTTP attempt, handed to a sink (the
local store's CallLog, which has it on disk before the call returns).

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
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from aigw.common.log_record import BodyFacts, LogRecord, new_id
from aigw.gateway.endpoints import Endpoint, parse
from aigw.gateway.http import BaseTransport, Request, Response, SyncByteStream, headers_named
from aigw.gateway.policies.logrow import answer_error_text, body_facts, storable
from aigw.gateway.policies.sse import RunEventWatcher
from aigw.gateway.transports import Layer
from aigw.redact import Redactor

CALL_ID = "aigw.call_id"
ATTEMPT = "aigw.attempt"
CACHE_STATUS = "aigw.cache_status"
MAX_PARSED_BYTES = 1 << 20  # larger bodies are not parsed for IDs, model or usage

_READ_HEADERS = (b"content-type", b"x-request-id")


def tag_attempt(request: Request, call_id: str, attempt: int) -> None:
    """For the retry layer: mark `request` as attempt `attempt` of logical call `call_id`."""
    request.extensions[CALL_ID] = call_id
    request.extensions[ATTEMPT] = attempt


def _json(body: bytes | None) -> Any:
    """A body, parsed (None if it is not JSON or too large to bother)."""
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


class LoggingTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        sink: Callable[[LogRecord], None],
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
        # A process meets the same few paths again and again (a run polled until it ends):
        # each is redacted and parsed once.
        self._endpoint = functools.lru_cache(maxsize=1024)(self._parse_path)

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
            emit(stream.watcher.run)
            with self._streams_lock:  # only once its row is made: close() waits for that
                self._streams.discard(stream)

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
        """Make the attempt's row and hand it to the sink; neither ever fails the call.
        `streamed_run`: the last run object of a server-sent-event answer, as its body."""
        endpoint = self._endpoint(request.url.path)
        # (an error raised for an answer, e.g. a 200 that is not JSON, carries its status)
        status = response.status_code if response is not None else _status_of(error)
        try:
            facts, message, payloads = self._read(
                request, endpoint, response, body, error, streamed_run
            )
        except Exception as exc:  # keep what is certain: time, path, status, latency
            facts, message = BodyFacts(), f"aigw could not build this log row: {type(exc).__name__}"
            payloads = (None, None)
        record_id = new_id(started_ns // 1_000_000)
        call_id = request.extensions.get(CALL_ID)
        record = LogRecord(
            endpoint=endpoint.template,
            method=request.method,
            id=record_id,
            created_at=datetime.fromtimestamp(started_ns / 1e9, UTC),
            status_code=status,
            latency_ms=latency,
            request_payload=payloads[0],
            response_payload=payloads[1],
            error_message=message,
            user_id=self.user_id,
            path=endpoint.path,
            request_id=request_id,
            call_id=str(call_id) if call_id else record_id,  # a call of one attempt: its id
            attempt=int(request.extensions.get(ATTEMPT) or 1),
            route=self.route,
            cache_status=response.extensions.get(CACHE_STATUS) if response is not None else None,
            **facts.row_fields(endpoint.ids),
        )
        with contextlib.suppress(Exception):  # the sink keeps what it could not write
            self.sink(record)

    def _read(
        self,
        request: Request,
        endpoint: Endpoint,
        response: Response | None,
        body: bytes | None,
        error: BaseException | None,
        streamed_run: dict[str, Any] | None,
    ) -> tuple[BodyFacts, str | None, tuple[Any, Any]]:
        """What the bodies say: their facts, the error text, the payloads to store."""
        get = request.method == "GET"
        sent = None if get else _json(_request_body(request))
        got = streamed_run
        # A GET of a collection: its body has nothing a row needs (and may be large).
        if (
            got is None
            and response is not None
            and (self.log_payloads or not get or not endpoint.listing)
        ):
            got = _json(body)
        payloads = (None, None)
        if self.log_payloads:
            payloads = (
                self.redactor.payload(sent) if sent is not None else None,
                self.redactor.payload(storable(got)) if got is not None else None,
            )
        return body_facts(sent, got), self._error_message(error, response, got), payloads

    def _parse_path(self, path: str) -> Endpoint:
        """The endpoint of a path redacted like a payload: an ID is the caller's text, and an
        e-mail given as one must not reach the log."""
        try:
            path = self.redactor.text(path)
        except Exception:
            path = "[REDACTED:unreadable]"
        return parse(path)

    def _error_message(
        self, error: BaseException | None, response: Response | None, got: Any
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
        """Make the row once. Held while it is made, so that a second caller (the layer's
        close, while the reading thread ends the stream) returns only after the row is."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self.on_end(self)


def _status_of(error: BaseException | None) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _request_body(request: Request) -> bytes | None:
    try:
        return request.content
    except Exception:  # a streamed upload: not read here, it belongs to the network layer
        return None
