"""CacheTransport: the cache policy (gateway/policies/cache.py) as a transport layer, with
its entries in the shared state across invocations. The per-invocation flags (`--no-cache`,
`--max-age`) come on top of the request's own Cache-Control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aigw.common.state import CacheEntry, SharedState
from aigw.gateway import Clock
from aigw.gateway.http import BaseTransport, Request, Response, header
from aigw.gateway.policies.cache import (
    BYPASS,
    CREDENTIAL_HEADERS,
    HIT,
    KEPT_HEADERS,
    MISS,
    age_text,
    cache_key,
    cacheable_answer,
    entry_tag,
    fresh_for,
    invalidated_by,
    keep_for,
    keepable_body,
    max_age_of,
    resource_tag,
)
from aigw.gateway.transports import Layer
from aigw.gateway.transports.logging import CACHE_STATUS  # response extension → the log row
from aigw.redact import Redactor


class CacheTransport(Layer):
    def __init__(
        self,
        inner: BaseTransport,
        store: SharedState,
        *,
        default_ttl: float = 300.0,
        route: str = "gateway",
        credential_headers: tuple[str, ...] = (),
        options: dict[str, Any] | None = None,
        notify: Callable[[str], None] = lambda message: None,
        clock: Clock | None = None,
        redactor: Redactor | None = None,
    ):
        super().__init__(inner)
        self.redactor = redactor or Redactor()
        self.store = store
        self.default_ttl = default_ttl
        self.route = route
        self.credential_headers = CREDENTIAL_HEADERS + tuple(h.lower() for h in credential_headers)
        self._credential_names = {h.encode() for h in self.credential_headers}
        self.options = options if options is not None else {}  # per invocation: --no-cache…
        self.notify = notify
        self.clock = clock or Clock()
        self._keys: dict[tuple[Any, ...], str] = {}  # (method, scheme, host, path, credentials)

    def handle_request(self, request: Request) -> Response:
        path = request.url.path
        tag = resource_tag(path) if request.method == "GET" else None
        if tag is None:
            try:
                return self.inner.handle_request(request)
            finally:
                self._invalidate(request, invalidated_by(request.method, path))
        max_age, no_cache = self._freshness(request)
        key = self.key(request)
        if not no_cache and max_age > 0:
            entry = self.store.cache_get(key)
            age = self.clock.now() - entry.stored_at if entry else None
            if entry is not None and age is not None and 0 <= age <= max_age:
                return self._hit(request, entry, age)
        status = BYPASS if no_cache or max_age <= 0 else MISS
        response = self.inner.handle_request(request)
        response.extensions[CACHE_STATUS] = status
        if status == MISS and self._storable(response):
            body = response.read()
            if not keepable_body(body, self.redactor):
                return response
            headers = [(n, v) for n, v in response.headers.items() if n.lower() in KEPT_HEADERS]
            self.store.cache_put(
                CacheEntry(
                    key,
                    self._tag(request, tag),
                    _display(request),
                    self.clock.now(),
                    response.status_code,
                    headers,
                    body,
                ),
                keep_for=keep_for(self.default_ttl),
            )
        if self.options.get("verbose"):
            self.notify(f"cache {status}: GET {_display(request)}")
        return response

    # -- parts -----------------------------------------------------------------------------
    def _freshness(self, request: Request) -> tuple[float, bool]:
        header_age, header_no_cache = max_age_of(header(request.headers, b"cache-control"))
        no_cache = bool(self.options.get("no_cache")) or header_no_cache
        flag_age = self.options.get("max_age")
        asked = float(flag_age) if flag_age is not None else header_age
        return fresh_for(asked, self.default_ttl), no_cache

    def key(self, request: Request) -> str:
        # The same few URLs come again and again in one process: hash each identity once.
        """The cache key of a request: method, URL, route and hashed credentials."""
        wanted = self._credential_names
        credentials = tuple(
            sorted((k.lower(), v) for k, v in request.headers.raw if k.lower() in wanted)
        )
        url = request.url
        memo = (request.method, url.scheme, url.netloc, url.raw_path, credentials)
        found = self._keys.get(memo)
        if found is None:
            found = self._keys[memo] = self._key(request, credentials)
            if len(self._keys) > 1024:
                self._keys.pop(next(iter(self._keys)))
        return found

    def _key(self, request: Request, credentials: tuple[tuple[bytes, bytes], ...]) -> str:
        url = request.url
        raw_query = url.query.decode() if isinstance(url.query, bytes) else str(url.query)
        origin = f"{url.scheme}://{url.host}:{url.port or ''}"
        return cache_key(request.method, origin, url.path, raw_query, self.route, credentials)

    @staticmethod
    def _tag(request: Request, tag: str) -> str:
        return entry_tag(request.url.host, request.url.port, tag)

    def _invalidate(self, request: Request, tags: list[str]) -> None:
        """Drop what a write made stale. A store that refuses is said, never raised: the write
        itself happened upstream and must not be reported as failed."""
        if not tags:
            return
        try:
            self.store.cache_drop([self._tag(request, t) for t in tags])
        except Exception as exc:
            self.notify(
                f"warning: the cache could not drop its copies of {', '.join(tags)} "
                f"({type(exc).__name__}: {exc}); reads may show the old answer for up to "
                f"{self.default_ttl:g} s (AIGW_CACHE_TTL): use --no-cache until then"
            )

    @staticmethod
    def _storable(response: Response) -> bool:
        content_type = header(response.headers, b"content-type")
        cache_control = header(response.headers, b"cache-control")
        return cacheable_answer(response.status_code, content_type, cache_control)

    def _hit(self, request: Request, entry: CacheEntry, age: float) -> Response:
        if self.options.get("verbose"):
            self.notify(f"cache hit: GET {entry.url} ({age_text(age)} old)")
        else:
            self.options.get("on_cache_hit", lambda seconds: None)(age)
        headers = [*entry.headers, ("age", str(int(age))), ("x-aigw-cache", HIT)]
        response = Response(entry.status, headers=headers, content=entry.body, request=request)
        response.extensions[CACHE_STATUS] = HIT
        return response


def _display(request: Request) -> str:
    """Path and query, the way a person reads it (no host: it is the configured one)."""
    url = request.url
    query = url.query.decode() if isinstance(url.query, bytes) else str(url.query)
    return url.path + (f"?{query}" if query else "")
