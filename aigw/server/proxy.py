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
import functools
import math
import secrets
import time
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from multidict import CIMultiDict

from aigw.common.state import CacheEntry
from aigw.gateway.endpoints import Endpoint, endpoint_of
from aigw.gateway.policies.cache import (
    BYPASS,
    CREDENTIAL_HEADERS,
    HIT,
    MISS,
    cache_key,
    entry_tag,
    fresh_for,
    invalidated_by,
    max_age_of,
    resource_tag,
)
from aigw.gateway.policies.idempotency import HEADER as IDEMPOTENCY_HEADER
from aigw.gateway.policies.idempotency import WINDOW_S as IDEMPOTENCY_WINDOW_S
from aigw.gateway.policies.idempotency import request_fingerprint
from aigw.server.errors import gateway_error
from aigw.server.runtime import RUNTIME, Runtime
from aigw.server.upstream import UpstreamCall, client_retrying
from aigw.services.validation import validation_problem
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
    upstream_headers = _upstream_headers(runtime, headers)
    raw_query = request.rel_url.raw_query_string
    tag = resource_tag(path) if method == "GET" and settings.cache_ttl > 0 else None
    key = None
    cache_status = None
    accepted_age = 0.0
    if tag is not None:
        max_age, no_cache = max_age_of(headers.get("cache-control"))
        accepted_age = fresh_for(max_age, settings.cache_ttl)
        key = _cache_key(runtime, method, path, raw_query, upstream_headers)
        cache_status = BYPASS if no_cache or accepted_age <= 0 else MISS
    entry = await _admit(runtime, given_key, key if cache_status == MISS else None)

    url = runtime.options.upstream + path.removeprefix("/v1")
    if raw_query:
        url += f"?{raw_query}"
    retrying = client_retrying(headers)
    call = UpstreamCall(
        runtime, request, method, path, endpoint, sent, _user_id(runtime, headers), retrying
    )
    if tag is not None:
        if cache_status == MISS:
            if entry is not None and 0 <= time.time() - entry.stored_at <= accepted_age:
                runtime.metrics.cache.labels(HIT).inc()
                return call.cache_hit(entry)
            if runtime.state_mode == "degraded":
                cache_status = BYPASS  # the shared state does not answer: no cache for now
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
    keyed = method == "POST" and IDEMPOTENCY_HEADER not in upstream_headers
    if keyed:
        # A client's retry of this request (on any instance) goes with its first try's key.
        credentials = [given_key, headers.get("authorization", "")]
        fingerprint = request_fingerprint(credentials, method, path, raw_query, body)
        upstream_headers[IDEMPOTENCY_HEADER] = await runtime.state.idempotency_key(
            fingerprint,
            # not the call id (log rows are read more widely); a bare token, not a uuid4,
            # whose object costs a request ~30 us on an idle machine
            f"aigw-{secrets.token_hex(16)}",
            time.time(),
            retry=retrying,
            keep_for=IDEMPOTENCY_WINDOW_S,
        )
    try:
        response = await call.attempts(url, body, upstream_headers, cache_status, key, tag)
    finally:
        stale = invalidated_by(method, path)
        if stale:
            origin = runtime.upstream_origin
            await runtime.state.cache_drop([entry_tag(origin[1], origin[2], t) for t in stale])
    if keyed and response.status >= 400:
        # The client may retry this one, perhaps on another worker: the key must be there.
        await runtime.state.settle()
    return response


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
        if request.content.is_eof():  # all here with the headers (most bodies): no timer
            return await request.read()
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


async def _admit(runtime: Runtime, given_key: str, cache_key: str | None) -> CacheEntry | None:
    """Refuse the request if a rate limit is reached (the key's, or the gateway's); else the
    cache entry under `cache_key` (None: no read). One call to the shared state."""
    limits = [x for x in (runtime.key_limit(given_key), runtime.global_limit) if x is not None]
    if not limits and cache_key is None:
        return None
    try:
        admission = await runtime.admit(limits, cache_key)
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
    if admission.refused_by is not None:
        limiter = limits[admission.refused_by]
        which = "this gateway key" if limiter.name.startswith("gateway:key:") else "the gateway"
        raise _Refused(
            gateway_error(
                429,
                f"Rate limit reached for {which} ({limiter.spec}); try again in "
                f"{math.ceil(admission.wait)} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers=_retry_after(admission.wait),
            )
        )
    return admission.entry


def _retry_after(seconds: float | None) -> dict[str, str] | None:
    if seconds is None:
        return None
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def _upstream_headers(runtime: Runtime, headers: Any) -> CIMultiDict[str]:
    """The client's headers the upstream needs: hop-by-hop and the gateway's own dropped,
    Authorization kept (or replaced by AIGW_UPSTREAM_API_KEY), the upstream key added."""
    settings = runtime.settings
    dropped = _dropped(settings.gateway_key_header, settings.user_id_header)
    out = CIMultiDict([(n, v) for n, v in headers.items() if n.lower() not in dropped])
    if settings.upstream_api_key is not None:
        out["Authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
    return out


@functools.cache
def _dropped(gateway_key_header: str, user_id_header: str) -> frozenset[str]:
    """The request headers never forwarded: hop-by-hop ones and the gateway's own."""
    return _REQUEST_DROPPED | {gateway_key_header.lower(), user_id_header.lower()}


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


def _user_id(runtime: Runtime, headers: Any) -> str | None:
    given = headers.get(runtime.settings.user_id_header)
    return given.strip()[:200] or None if given else runtime.settings.user_id
