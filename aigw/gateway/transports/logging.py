"""LoggingTransport: one LogRecord per HTTP attempt, handed to a sink (the local outbox).

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
body; a stream is passed through untouched and timed to its headers. Payloads are stored only
with AIGW_LOG_PAYLOADS, and then redacted first. Building a record can never fail the call:
any surprise becomes a minimal row instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from aigw.gateway.endpoints import parse
from aigw.gateway.http import BaseTransport, Request, Response, headers_named
from aigw.gateway.transports.base import Layer
from aigw.redact import Redactor
from aigw.storage.base import LogRecord, new_id

CALL_ID = "aigw.call_id"
ATTEMPT = "aigw.attempt"
CACHE_STATUS = "aigw.cache_status"
MAX_PARSED_BYTES = 1 << 20  # larger bodies are not parsed for IDs, model or usage

# A process calls the same few paths again and again: template each one once. Endpoint is
# frozen and only read here, so sharing one between rows is safe.
_endpoint = functools.lru_cache(maxsize=1024)(parse)
_READ_HEADERS = (b"content-type", b"x-request-id")
_NOTHING: dict[str, Any] = {}  # an absent body: every .get() is None


def tag_attempt(request: Request, call_id: str, attempt: int) -> None:
    """For the retry layer: mark `request` as attempt `attempt` of logical call `call_id`."""
    request.extensions[CALL_ID] = call_id
    request.extensions[ATTEMPT] = attempt


def _json(body: bytes | None) -> Any:
    if not body or len(body) > MAX_PARSED_BYTES:
        return None
    try:
        return orjson.loads(body)
    except ValueError:  # orjson refuses integers past 64 bits and lone surrogates
        pass
    try:
        return _storable(json.loads(body))
    except ValueError:
        return None


def _storable(value: Any) -> Any:
    """What the journal, SQLite and Postgres can all take: lone surrogates become U+FFFD and
    integers past 64 bits floats (such values only ever reach payloads and ids here)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return float(value)
    if isinstance(value, list):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


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
        agent_for: Callable[[str], str | None] = lambda assistant_id: None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__(inner)
        self.sink = sink
        self.route = route
        self.user_id = user_id
        self.redactor = redactor or Redactor()
        self.log_payloads = log_payloads
        self.agent_for = agent_for
        self.clock = clock

    def handle_request(self, request: Request) -> Response:
        # The row's id is a UUIDv7 of the same instant as created_at (how the local store
        # finds a row by id, see storage/sqlite.py).
        now_ns = time.time_ns()
        started = self.clock()
        try:
            response = self.inner.handle_request(request)
            content_type, request_id = headers_named(response.headers, _READ_HEADERS)
            body = None if content_type.startswith("text/event-stream") else response.read()
        except Exception as exc:
            latency = (self.clock() - started) * 1000
            self._emit(request, None, None, None, now_ns, latency, exc)
            raise
        latency = (self.clock() - started) * 1000
        self._emit(request, response, body, request_id or None, now_ns, latency, None)
        return response

    def _emit(
        self,
        request: Request,
        response: Response | None,
        body: bytes | None,
        request_id: str | None,
        now_ns: int,
        latency: float,
        error: BaseException | None,
    ) -> None:
        record_id = new_id(now_ns // 1_000_000)
        created_at = datetime.fromtimestamp(now_ns / 1e9, UTC)
        try:
            record = self._record(
                request, response, body, request_id, record_id, created_at, latency, error
            )
        except Exception as exc:  # never let logging fail the call: keep what is certain
            record = LogRecord(
                endpoint=_endpoint(request.url.path).template,
                method=request.method,
                id=record_id,
                created_at=created_at,
                status_code=response.status_code if response is not None else None,
                latency_ms=latency,
                error_message=f"aigw could not build this log row: {type(exc).__name__}",
                route=self.route,
            )
        with contextlib.suppress(Exception):  # the sink keeps what it could not write
            self.sink(record)

    def _record(
        self,
        request: Request,
        response: Response | None,
        body: bytes | None,
        request_id: str | None,
        record_id: str,
        created_at: datetime,
        latency: float,
        error: BaseException | None,
    ) -> LogRecord:
        endpoint = _endpoint(request.url.path)
        ids = endpoint.ids
        method = request.method
        sent = _json(_request_body(request)) if method != "GET" else None
        skip_body = method == "GET" and endpoint.listing and not self.log_payloads
        got = _json(body) if body is not None and not skip_body else None
        sent_obj = sent if isinstance(sent, dict) else _NOTHING
        got_obj = got if isinstance(got, dict) else _NOTHING
        kind = got_obj.get("object")
        own_id = _str(got_obj.get("id"))
        assistant_id = (
            ids.get("assistant_id")
            or _str(sent_obj.get("assistant_id"))
            or _str(got_obj.get("assistant_id"))
            or (own_id if kind == "assistant" else None)
        )
        usage = got_obj.get("usage") if kind == "thread.run" else None
        if not isinstance(usage, dict):
            usage = _NOTHING
        extensions = request.extensions
        payloads = self.log_payloads
        return LogRecord(
            endpoint=endpoint.template,
            method=method,
            id=record_id,
            created_at=created_at,
            status_code=response.status_code if response is not None else None,
            latency_ms=latency,
            request_payload=self.redactor.payload(sent) if payloads and sent is not None else None,
            response_payload=self.redactor.payload(got) if payloads and got is not None else None,
            error_message=self._error_message(error, response, got_obj),
            user_id=self.user_id,
            agent_id=self.agent_for(assistant_id) if assistant_id else None,
            path=endpoint.path,
            request_id=request_id,
            # Untagged (no retry layer): a call of one attempt, named by that attempt's id.
            call_id=str(extensions.get(CALL_ID) or record_id),
            attempt=int(extensions.get(ATTEMPT) or 1),
            route=self.route,
            cache_status=response.extensions.get(CACHE_STATUS) if response is not None else None,
            thread_id=ids.get("thread_id")
            or _str(got_obj.get("thread_id"))
            or (own_id if kind == "thread" else None),
            run_id=ids.get("run_id")
            or _str(got_obj.get("run_id"))
            or (own_id if kind == "thread.run" else None),
            assistant_id=assistant_id,
            model=_str(got_obj.get("model")) or _str(sent_obj.get("model")),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            total_tokens=_int(usage.get("total_tokens")),
        )

    def _error_message(
        self, error: BaseException | None, response: Response | None, got: dict[str, Any]
    ) -> str | None:
        if error is not None:
            message = f"{type(error).__name__}: {error}"
        elif response is not None and response.status_code >= 400:
            detail = got.get("error")
            text = detail.get("message") if isinstance(detail, dict) else None
            message = str(text) if text else f"HTTP {response.status_code}"
        else:
            return None
        return self.redactor.text(message)[:2000]  # error text may echo the input back


def _request_body(request: Request) -> bytes | None:
    try:
        return request.content
    except Exception:  # a streamed upload: not read here, it belongs to the network layer
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    """An integer SQLite and Postgres can store (bigint), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
    return value if ok else None
