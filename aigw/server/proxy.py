"""The /v1 proxy: one request of the application, through the policies, to the fixed upstream.

Order (each step can answer on its own, in OpenAI's error shape):
  gateway key (401) → body size and JSON (413, 400) → validation (400) → rate limits per key
  and global (429) → cache read (a hit answers here) → circuit breaker (503) → attempts with
  retry (502 unreachable, 504 deadline) → relay, streamed event by event when the answer is SSE.
Every upstream attempt and every cache hit is one log row (group-committed off this path);
refusals before the upstream are counted in /metrics but not logged, so a flood of bad
requests cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from aigw.common.state import CacheEntry
from aigw.gateway.endpoints import Endpoint, endpoint_of
from aigw.gateway.http import is_upstream_failure_status as is_retryable_status
from aigw.gateway.policies.cache import (
    BYPASS,
    CREDENTIAL_HEADERS,
    HIT,
    KEEP_FOR,
    KEPT_HEADERS,
    MISS,
    cache_key,
    cacheable_answer,
    entry_tag,
    invalidated_by,
    keepable_body,
    max_age_of,
    resource_tag,
)
from aigw.gateway.policies.idempotency import WINDOW_S as IDEMPOTENCY_WINDOW_S
from aigw.gateway.policies.idempotency import request_fingerprint
from aigw.gateway.policies.logrow import answer_error_text, body_facts, storable
from aigw.gateway.policies.sse import RunEventWatcher
from aigw.gateway.transports.retry import RetryPolicy, retry_after_seconds
from aigw.server.errors import gateway_error
from aigw.server.runtime import RUNTIME, Runtime
from aigw.services.validation import validation_problem
from aigw.storage.base import LogRecord, new_id
from aigw.storage.failover import StateUnavailable

# Never forwarded upstream: connection-level headers, and what the client session sets itself.
_REQUEST_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "cookie",
    }
)
# Never relayed to the client: connection-level, and what the gateway changed (it decodes).
_RESPONSE_DROPPED = frozenset(
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
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The OpenAI SDKs number their own retries: a retried request gets no retries of ours on top.
CLIENT_RETRY_HEADER = "x-stainless-retry-count"
_JSON_TYPES = ("application/json", "")


class _Refused(Exception):
    """Answer this instead of going upstream."""

    def __init__(self, response: web.Response):
        self.response = response


async def proxy(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    arrived = time.perf_counter()
    runtime.in_flight += 1
    endpoint = "/v1/{other}"
    status = 500
    try:
        path = request.rel_url.raw_path
        parsed = endpoint_of(path)
        endpoint = parsed.template
        response = await _handle(runtime, request, path, parsed)
        status = response.status
        return response
    except _Refused as refused:
        status = refused.response.status
        return refused.response
    finally:
        runtime.in_flight -= 1
        runtime.metrics.observe(endpoint, request.method, status, time.perf_counter() - arrived)


async def _handle(
    runtime: Runtime, request: web.Request, path: str, endpoint: Endpoint
) -> web.StreamResponse:
    settings = runtime.settings
    headers = request.headers
    given_key = headers.get(settings.gateway_key_header)
    if not runtime.key_accepted(given_key):
        raise _Refused(_unauthorized(settings.gateway_key_header, given_key))
    assert given_key is not None
    _check_path(path)
    method = request.method
    body = await _body(request)
    sent = _parsed(method, headers.get("content-type", ""), body)
    query = request.rel_url.query
    problem = validation_problem(method, endpoint, sent, query, prefixes=settings.check_id_prefixes)
    if problem is not None:
        error = gateway_error(400, problem.message, param=problem.param, code=problem.code)
        raise _Refused(error)
    await _rate_limit(runtime, given_key)

    upstream_headers = _upstream_headers(runtime, headers)
    raw_query = request.rel_url.raw_query_string
    url = runtime.options.upstream + path.removeprefix("/v1")
    if raw_query:
        url += f"?{raw_query}"
    call = _Call(runtime, request, method, path, endpoint, sent, _user_id(runtime, headers))

    tag = resource_tag(path) if method == "GET" and settings.cache_ttl > 0 else None
    key = None
    cache_status = None
    if tag is not None:
        max_age, no_cache = max_age_of(headers.get("cache-control"))
        fresh_for = settings.cache_ttl if max_age is None else max_age
        key = _cache_key(runtime, method, path, raw_query, upstream_headers)
        cache_status = BYPASS if no_cache or fresh_for <= 0 else MISS
        if cache_status == MISS:
            entry = await runtime.state.cache_get(key)
            if entry is not None and 0 <= time.time() - entry.stored_at <= fresh_for:
                runtime.metrics.cache.labels(HIT).inc()
                return call.cache_hit(entry)
        runtime.metrics.cache.labels(cache_status).inc()

    refusal = await runtime.breaker_refusal()
    if refusal is not None:
        message = refusal.message.replace("; --force to try anyway", "")
        return gateway_error(
            503,
            f"the gateway is not calling the upstream: {message}",
            type="server_error",
            code="circuit_open",
            headers=_retry_after(refusal.retry_after),
        )
    if method == "POST" and IDEMPOTENCY_HEADER not in upstream_headers:
        # A client's retry of this request (on any instance) goes with its first try's key.
        credentials = [given_key, headers.get("authorization", "")]
        fingerprint = request_fingerprint(credentials, method, path, raw_query, body)
        upstream_headers[IDEMPOTENCY_HEADER] = await runtime.state.idempotency_key(
            fingerprint,
            f"aigw-{uuid.uuid4()}",
            time.time(),
            retry=_client_retrying(headers),
            keep_for=IDEMPOTENCY_WINDOW_S,
        )
    try:
        return await call.attempts(url, body, upstream_headers, cache_status, key, tag)
    finally:
        stale = invalidated_by(method, path)
        if stale:
            origin = runtime.upstream_origin
            await runtime.state.cache_drop([entry_tag(origin[1], origin[2], t) for t in stale])


class _Call:
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
    ):
        self.runtime = runtime
        self.request = request
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.sent = sent
        self.user_id = user_id
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
        client_retrying = _client_retrying(self.request.headers)
        policy = RetryPolicy(0 if client_retrying else settings.max_retries, settings.retry_budget)
        waited = 0.0
        keys = await runtime.upstream_keys_in_order()  # empty unless AIGW_UPSTREAM_GATEWAY_KEYS
        key_header = settings.gateway_key_header
        if keys:
            headers[key_header] = keys[0].value
        while True:
            self.attempt += 1
            can_retry = self.attempt <= policy.max_retries
            started, clock = time.time(), time.perf_counter()
            try:
                answer = await runtime.session.request(
                    self.method, url, headers=headers, data=body or None, allow_redirects=False
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                latency = (time.perf_counter() - clock) * 1000
                error = _upstream_failure(exc, settings.timeout)
                await runtime.breaker_record(failure=True, error=type(exc).__name__)
                self.log(started, latency, None, None, None, cache_status, error.text)
                delay = policy.backoff(self.attempt)
                if can_retry and waited + delay <= policy.budget:
                    runtime.metrics.retries.inc()
                    await asyncio.sleep(delay)
                    waited += delay
                    continue
                return error.response()
            status = answer.status
            if keys and status == 401 and len(keys) > 1:
                # Refused: the same call (same call id) with the next key, without a wait.
                got = await _small_body(answer)
                answer.release()
                latency = (time.perf_counter() - clock) * 1000
                self.log(started, latency, status, answer, got, cache_status, None)
                keys = keys[1:]
                headers[key_header] = keys[0].value
                continue
            if keys and status != 401:
                await runtime.remember_upstream_key(keys[0])
            await runtime.breaker_record(
                failure=is_retryable_status(status), error=f"HTTP {status}"
            )
            if can_retry and is_retryable_status(status):
                asked = retry_after_seconds(answer.headers, time.time())  # type: ignore[arg-type]
                delay = asked if asked is not None else policy.backoff(self.attempt)
                if waited + delay <= policy.budget:
                    got = await _small_body(answer)
                    answer.release()
                    latency = (time.perf_counter() - clock) * 1000
                    self.log(started, latency, status, answer, got, cache_status, None)
                    runtime.metrics.retries.inc()
                    await asyncio.sleep(delay)
                    waited += delay
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
        headers = _relayed_headers(answer.headers, cache_status)
        content_type = answer.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
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
            error = _upstream_failure(exc, runtime.settings.timeout)
            self.log(started, latency, status, answer, None, cache_status, error.text)
            return error.response()
        latency = (time.perf_counter() - clock) * 1000
        if size > cap:
            message = f"the upstream's answer is larger than AIGW_MAX_BODY_BYTES={cap}"
            self.log(started, latency, status, answer, None, cache_status, message)
            return gateway_error(502, message, type="server_error", code="upstream_too_large")
        body = b"".join(chunks)
        got = _json_or_none(body)
        self.log(started, latency, status, answer, got, cache_status, None)
        if (
            key is not None
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
                keep_for=KEEP_FOR,
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
        await response.prepare(self.request)
        watcher = RunEventWatcher()
        cap = self.runtime.settings.max_body_bytes
        size = 0
        error = None
        try:
            async for chunk in answer.content.iter_any():
                size += len(chunk)
                if size > cap:
                    error = f"stream cut off: larger than AIGW_MAX_BODY_BYTES={cap}"
                    break
                watcher.feed(chunk)
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"stream ended early: {type(exc).__name__}"
        except ConnectionResetError:
            error = "the client went away during the stream"
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
        got = _json_or_none(entry.body)
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
        facts = body_facts(self.sent, got)
        if error is None and status is not None:
            error = answer_error_text(status, got)
        assistant_id = endpoint.ids.get("assistant_id") or facts.assistant_id
        payloads = settings.log_payloads
        record = LogRecord(
            endpoint=endpoint.template,
            method=self.method,
            id=new_id(int(started * 1000)),
            created_at=_utc(started),
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
            thread_id=endpoint.ids.get("thread_id") or facts.thread_id,
            run_id=endpoint.ids.get("run_id") or facts.run_id,
            assistant_id=assistant_id,
            model=facts.model,
            prompt_tokens=facts.prompt_tokens,
            completion_tokens=facts.completion_tokens,
            total_tokens=facts.total_tokens,
            source="aigw-gateway",
        )
        runtime.writer.add(record)


# -- the steps' parts ------------------------------------------------------------------------
def _unauthorized(header: str, given: str | None) -> web.Response:
    said = "is missing" if not given else "is not one this gateway accepts"
    return gateway_error(
        401,
        f"The gateway key in the {header} header {said}.",
        code="invalid_gateway_key",
    )


def _check_path(path: str) -> None:
    """Only plain /v1 paths: no dot segments, no empty segments, nothing that could name
    another place once the upstream's URL library normalises it."""
    segments = unquote(path).split("/")[1:]
    if (
        any(s in ("", ".", "..") for s in segments[:-1])
        or "\\" in path
        or segments[-1] in (".", "..")
    ):
        raise _Refused(gateway_error(400, f"Invalid path {path[:200]!r}.", code="invalid_path"))


async def _body(request: web.Request) -> bytes:
    cap = request.app[RUNTIME].settings.max_body_bytes
    length = request.content_length
    if length is not None and length > cap:
        raise _Refused(_too_large(cap))
    if not request.body_exists:
        return b""
    try:
        async with asyncio.timeout(request.app[RUNTIME].settings.timeout):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Refused(_too_large(cap)) from None
    except TimeoutError:
        raise _Refused(
            gateway_error(408, "The request body did not arrive in time.", code="request_timeout")
        ) from None


def _too_large(cap: int) -> web.Response:
    return gateway_error(
        413,
        f"The request body is larger than this gateway accepts ({cap} bytes).",
        code="request_too_large",
    )


def _parsed(method: str, content_type: str, body: bytes) -> Any:
    """The JSON request body, or None when there is none; malformed JSON is a 400."""
    if not body or method == "GET":
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES:
        return None  # a file upload or a form: forwarded untouched
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Refused(
            gateway_error(
                400,
                f"We could not parse the JSON body of your request. ({exc})",
                code="invalid_json",
            )
        ) from None


async def _rate_limit(runtime: Runtime, given_key: str) -> None:
    for limiter in (runtime.key_limit(given_key), runtime.global_limit):
        if limiter is None:
            continue
        try:
            wait = await runtime.rate_wait(limiter)
        except StateUnavailable as refused:
            raise _Refused(
                gateway_error(
                    503,
                    f"The gateway cannot check its rate limit: {refused.message}.",
                    type="server_error",
                    code="state_unavailable",
                    headers=_retry_after(1),
                )
            ) from None
        if wait > 0:
            which = "this gateway key" if limiter.name.startswith("gateway:key:") else "the gateway"
            raise _Refused(
                gateway_error(
                    429,
                    f"Rate limit reached for {which} ({limiter.spec}); try again in "
                    f"{math.ceil(wait)} s.",
                    type="requests",
                    code="rate_limit_exceeded",
                    headers=_retry_after(wait),
                )
            )


def _client_retrying(headers: Any) -> bool:
    return headers.get(CLIENT_RETRY_HEADER, "0") not in ("", "0")


def _retry_after(seconds: float | None) -> dict[str, str] | None:
    if seconds is None:
        return None
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def _upstream_headers(runtime: Runtime, headers: Any) -> CIMultiDict[str]:
    """The client's headers the upstream needs: hop-by-hop and the gateway's own dropped,
    Authorization kept (or replaced by AIGW_UPSTREAM_API_KEY), the upstream key added."""
    settings = runtime.settings
    own = {settings.gateway_key_header.lower(), settings.user_id_header.lower()}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in _REQUEST_DROPPED and lower not in own:
            out.add(name, value)
    if settings.upstream_api_key is not None:
        out["Authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
    return out


def _cache_key(
    runtime: Runtime, method: str, path: str, query: str, headers: CIMultiDict[str]
) -> str:
    names = (*CREDENTIAL_HEADERS, runtime.settings.gateway_key_header.lower())
    credentials = tuple(
        sorted(
            (n.lower().encode(), v.encode("latin-1", "replace"))
            for n, v in headers.items()
            if n.lower() in names
        )
    )
    scheme, host, port = runtime.upstream_origin
    return cache_key(method, f"{scheme}://{host}:{port or ''}", path, query, "gateway", credentials)


class _Failure:
    def __init__(self, status: int, text: str, code: str):
        self.status = status
        self.text = text
        self.code = code

    def response(self) -> web.Response:
        return gateway_error(self.status, self.text, type="server_error", code=self.code)


def _upstream_failure(exc: BaseException, timeout: float) -> _Failure:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return _Failure(
            504,
            f"The upstream did not answer within AIGW_TIMEOUT={timeout:g} s.",
            "upstream_timeout",
        )
    return _Failure(
        502, f"The upstream is unreachable: {type(exc).__name__}.", "upstream_unreachable"
    )


async def _small_body(answer: aiohttp.ClientResponse) -> Any:
    """An error answer's body, for its log row (error answers are small; bounded anyway)."""
    try:
        return _json_or_none(await answer.content.read(65_536))
    except (TimeoutError, aiohttp.ClientError, OSError):
        return None


def _relayed_headers(upstream: Any, cache_status: str | None) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream.items():
        if name.lower() not in _RESPONSE_DROPPED:
            out.add(name, value)
    if cache_status is not None:
        out["x-aigw-cache"] = cache_status
    return out


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _user_id(runtime: Runtime, headers: Any) -> str | None:
    given = headers.get(runtime.settings.user_id_header)
    return given.strip()[:200] or None if given else runtime.settings.user_id


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
