"""One request's way upstream: the attempts (retried as gateway/policies/retry.py decides, with
the upstream gateway keys rotated on a 401), the relay of the answer (whole, capped at
AIGW_MAX_BODY_BYTES and kept in the cache when it may be, or streamed event by event), and a
log row per attempt and per cache hit, handed to the group-commit writer.

server/proxy.py decides whether a request goes upstream at all; this module only goes.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from aigw.common.api_errors import ApiError, error_response
from aigw.common.log_record import LogRecord, new_id
from aigw.common.state import CacheEntry
from aigw.gateway.endpoints import Endpoint
from aigw.gateway.policies.cache import (
    HIT,
    KEPT_HEADERS,
    MISS,
    cacheable_answer,
    entry_tag,
    keep_for,
    keepable_body,
)
from aigw.gateway.policies.logrow import answer_error_text, body_facts, storable
from aigw.gateway.policies.retry import RETRY, RetryPolicy, is_upstream_failure_status
from aigw.gateway.policies.sse import RunEventWatcher
from aigw.server.errors import gateway_error
from aigw.server.runtime import Runtime

# Never relayed to the client: connection-level, and what the gateway changed (it decodes).
RESPONSE_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "set-cookie",
    }
)
# The OpenAI SDKs number their own retries: a retried request gets no retries of ours on top.
CLIENT_RETRY_HEADER = "x-stainless-retry-count"


def client_retrying(headers: Any) -> bool:
    """Whether the request is a client's own retry (its SDK numbers them)."""
    return headers.get(CLIENT_RETRY_HEADER, "0") not in ("", "0")


class UpstreamCall:
    """One request's upstream attempts and their log rows."""

    def __init__(
        self,
        runtime: Runtime,
        request: web.Request,
        method: str,
        path: str,
        endpoint: Endpoint,
        sent: Any,
        user_id: str | None,
        retrying: bool,
    ):
        self.runtime = runtime
        self.request = request
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.sent = sent
        self.user_id = user_id
        self.retrying = retrying  # a client's own retry: no retries of ours on top
        self.call_id = new_id()
        self.attempt = 0

    async def attempts(
        self,
        url: str,
        body: bytes,
        headers: CIMultiDict[str],
        cache_status: str | None,
        key: str | None,
        tag: str | None,
    ) -> web.StreamResponse:
        runtime = self.runtime
        settings = runtime.settings
        assert runtime.session is not None
        policy = RetryPolicy(
            settings.max_retries, settings.retry_budget, attempt_timeout=settings.timeout
        )
        retries = policy.start(time.time(), retries=0 if self.retrying else None)
        # A streamed run may have started upstream once the request was sent: after a
        # transport error it is repeated only when the connection was never made.
        streamed = isinstance(self.sent, dict) and self.sent.get("stream") is True
        keys = await runtime.upstream_keys_in_order()  # empty unless AIGW_UPSTREAM_GATEWAY_KEYS
        key_header = settings.gateway_key_header
        if keys:
            headers[key_header] = keys[0].value
        while True:
            self.attempt += 1
            started, clock = time.time(), time.perf_counter()
            try:
                answer = await runtime.session.request(
                    self.method, url, headers=headers, data=body or None, allow_redirects=False
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                latency = (time.perf_counter() - clock) * 1000
                error = upstream_failure(exc, settings.timeout)
                await runtime.breaker_record(failure=True, error=type(exc).__name__)
                self.log(started, latency, None, None, None, cache_status, error.message)
                never_sent = isinstance(exc, aiohttp.ClientConnectorError)
                step = retries.after_error(time.time(), retryable=not streamed or never_sent)
                if step.action == RETRY:
                    runtime.metrics.retries.inc()
                    await asyncio.sleep(step.delay)
                    continue
                return error_response(error)
            status = answer.status
            if keys and status == 401 and len(keys) > 1:
                # Refused: the same call (same call id) with the next key, without a wait.
                got = await small_body(answer)
                answer.release()
                latency = (time.perf_counter() - clock) * 1000
                self.log(started, latency, status, answer, got, cache_status, None)
                keys = keys[1:]
                headers[key_header] = keys[0].value
                continue
            if keys and status != 401:
                await runtime.remember_upstream_key(keys[0])
            failed = is_upstream_failure_status(status)
            streamed_on = is_event_stream(answer) and not 300 <= status < 400
            if failed or not streamed_on:  # a relayed stream's success: at its first byte
                await runtime.breaker_record(failure=failed, error=f"HTTP {status}")
            step = retries.after_answer(status, answer.headers, time.time())
            if step.action == RETRY:
                got = await small_body(answer)
                answer.release()
                latency = (time.perf_counter() - clock) * 1000
                self.log(started, latency, status, answer, got, cache_status, None)
                runtime.metrics.retries.inc()
                await asyncio.sleep(step.delay)
                continue
            try:
                return await self.relay(answer, started, clock, cache_status, key, tag)
            finally:
                answer.release()

    async def relay(
        self,
        answer: aiohttp.ClientResponse,
        started: float,
        clock: float,
        cache_status: str | None,
        key: str | None,
        tag: str | None,
    ) -> web.StreamResponse:
        runtime = self.runtime
        status = answer.status
        if 300 <= status < 400:
            latency = (time.perf_counter() - clock) * 1000
            where = urlsplit(answer.headers.get("location", "")).hostname or "the same host"
            message = (
                f"the upstream answered {status}, a redirect to {where}; "
                "the gateway does not follow redirects"
            )
            self.log(started, latency, status, answer, None, cache_status, message)
            return gateway_error(502, message, type="server_error", code="upstream_redirect")
        headers = relayed_headers(answer.headers, cache_status)
        content_type = answer.headers.get("content-type", "")
        if is_event_stream(answer):
            return await self.stream(answer, headers, started, clock, cache_status)
        cap = runtime.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in answer.content.iter_any():
                size += len(chunk)
                if size > cap:
                    break
                chunks.append(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            latency = (time.perf_counter() - clock) * 1000
            error = upstream_failure(exc, runtime.settings.timeout)
            self.log(started, latency, status, answer, None, cache_status, error.message)
            return error_response(error)
        latency = (time.perf_counter() - clock) * 1000
        if size > cap:
            message = f"the upstream's answer is larger than AIGW_MAX_BODY_BYTES={cap}"
            self.log(started, latency, status, answer, None, cache_status, message)
            return gateway_error(502, message, type="server_error", code="upstream_too_large")
        body = b"".join(chunks)
        got = json_or_none(body)
        self.log(started, latency, status, answer, got, cache_status, None)
        if (
            cache_status == MISS  # a bypass (no-cache, or the state degraded) stores nothing
            and key is not None
            and tag is not None
            and cacheable_answer(status, content_type, answer.headers.get("cache-control", ""))
            and keepable_body(body, runtime.redactor)
        ):
            kept = [(n, v) for n, v in answer.headers.items() if n.lower() in KEPT_HEADERS]
            origin = runtime.upstream_origin
            await runtime.state.cache_put(
                CacheEntry(
                    key,
                    entry_tag(origin[1], origin[2], tag),
                    self.path,
                    time.time(),
                    status,
                    kept,
                    body,
                ),
                keep_for=keep_for(runtime.settings.cache_ttl),
            )
        return web.Response(status=status, body=body, headers=headers)

    async def stream(
        self,
        answer: aiohttp.ClientResponse,
        headers: CIMultiDict[str],
        started: float,
        clock: float,
        cache_status: str | None,
    ) -> web.StreamResponse:
        latency = (time.perf_counter() - clock) * 1000  # a stream is timed to its headers
        response = web.StreamResponse(status=answer.status, headers=headers)
        watcher = RunEventWatcher()
        cap = self.runtime.settings.max_body_bytes
        size = 0
        error = None
        # A success counts for the breaker once the first byte went on (the client is not
        # kept waiting for the count), else when the relay ends, however it ends (a half-open
        # probe must always report); a failure's status was counted before the relay.
        counted = is_upstream_failure_status(answer.status)
        try:
            await response.prepare(self.request)
            async for chunk in answer.content.iter_any():
                size += len(chunk)
                if size > cap:
                    error = f"stream cut off: larger than AIGW_MAX_BODY_BYTES={cap}"
                    break
                await response.write(chunk)  # first: reading it for the log row can wait
                if not counted:
                    counted = True
                    await self.runtime.breaker_record(failure=False, error=f"HTTP {answer.status}")
                watcher.feed(chunk)
        except ConnectionResetError:  # before OSError, which it is: the client went away
            error = "the client went away during the stream"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"stream ended early: {type(exc).__name__}"
        finally:
            if not counted:
                await self.runtime.breaker_record(failure=False, error=f"HTTP {answer.status}")
        if error is None:
            try:
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                error = "the client went away at the end of the stream"
        elif self.request.transport is not None:
            self.request.transport.close()  # the client must not take a cut stream as whole
        self.log(started, latency, answer.status, answer, watcher.run, cache_status, error)
        return response

    def cache_hit(self, entry: CacheEntry) -> web.Response:
        age = max(0.0, time.time() - entry.stored_at)
        headers = CIMultiDict(entry.headers)
        headers["age"] = str(int(age))
        headers["x-aigw-cache"] = HIT
        self.attempt = 1
        got = json_or_none(entry.body)
        self.log(time.time(), 0.0, entry.status, None, got, HIT, None)
        return web.Response(status=entry.status, body=entry.body, headers=headers)

    def log(
        self,
        started: float,
        latency_ms: float,
        status: int | None,
        answer: aiohttp.ClientResponse | None,
        got: Any,
        cache_status: str | None,
        error: str | None,
    ) -> None:
        runtime = self.runtime
        settings = runtime.settings
        endpoint = self.endpoint
        facts = body_facts(self.sent, got).row_fields(endpoint.ids)
        if error is None and status is not None:
            error = answer_error_text(status, got)
        assistant_id = facts["assistant_id"]
        payloads = settings.log_payloads
        record = LogRecord(
            endpoint=endpoint.template,
            method=self.method,
            id=new_id(int(started * 1000)),
            created_at=utc(started),
            status_code=status,
            latency_ms=latency_ms,
            request_payload=runtime.redactor.payload(self.sent)
            if payloads and self.sent is not None
            else None,
            response_payload=runtime.redactor.payload(storable(got))
            if payloads and got is not None
            else None,
            error_message=runtime.redactor.text(storable(error))[:2000] if error else None,
            user_id=self.user_id,
            agent_id=runtime.agent_for(assistant_id) if assistant_id else None,
            path=endpoint.path,
            request_id=answer.headers.get("x-request-id") if answer is not None else None,
            call_id=self.call_id,
            attempt=self.attempt,
            route="gateway",
            cache_status=cache_status,
            source="aigw-gateway",
            **facts,
        )
        runtime.writer.add(record)


def upstream_failure(exc: BaseException, timeout: float) -> ApiError:
    """The gateway's answer when an attempt got no answer from the upstream."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ApiError(
            504,
            f"The upstream did not answer within AIGW_TIMEOUT ({timeout:g}s).",
            type="server_error",
            code="upstream_timeout",
        )
    return ApiError(
        502,
        f"The upstream is unreachable: {type(exc).__name__}.",
        type="server_error",
        code="upstream_unreachable",
    )


async def small_body(answer: aiohttp.ClientResponse) -> Any:
    """An error answer's body, for its log row (error answers are small; bounded anyway)."""
    try:
        return json_or_none(await answer.content.read(65_536))
    except (TimeoutError, aiohttp.ClientError, OSError):
        return None


def is_event_stream(answer: aiohttp.ClientResponse) -> bool:
    """Whether the answer is server-sent events, relayed event by event."""
    return answer.headers.get("content-type", "").startswith("text/event-stream")


def relayed_headers(upstream: Any, cache_status: str | None) -> CIMultiDict[str]:
    out = CIMultiDict([(n, v) for n, v in upstream.items() if n.lower() not in RESPONSE_DROPPED])
    if cache_status is not None:
        out["x-aigw-cache"] = cache_status
    return out


def json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
