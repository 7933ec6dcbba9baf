"""The network itself: HTTP over httpcore2's connection pool, with a total deadline per attempt
and a cap on the response body.

AIGW_TIMEOUT is the longest one attempt may take, end to end. A read timeout alone does not
give that: an upstream that trickles its headers or body one byte a second never lets a single
read wait long. So every socket operation of an attempt gets the time left until the attempt's
deadline as its timeout (a network backend wrapping httpcore2's own), and a read past the
deadline fails as a read timeout.

A body is read here, counted as it is decoded (gzip and deflate included, so a small
compressed body cannot grow past the cap in memory), and refused beyond AIGW_MAX_BODY_BYTES.
An event stream (`text/event-stream`) is handed up unread: its deadline is the headers', each
later read waits at most AIGW_TIMEOUT, and its total size is capped the same way.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import httpcore2
from httpcore2 import NetworkBackend, NetworkStream, SyncBackend

from aigw.errors import AigwError, ExitCode
from aigw.gateway.http import BaseTransport, Request, Response, SyncByteStream, httpx2

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# Raw slices handed to the decoder: deflate expands at most ~1,000x, so a slice decodes to a
# few MB at worst before the cap is checked again.
_SLICE = 4096

# The monotonic time the current attempt must end by (None: no deadline).
_deadline: ContextVar[float | None] = ContextVar("aigw_deadline", default=None)

# httpcore2's errors → httpx2's, which the SDK and aigw's layers know (most specific first).
_MAPPED: list[tuple[type[Exception], type[httpx2.TransportError]]] = [
    (httpcore2.ConnectTimeout, httpx2.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx2.ReadTimeout),
    (httpcore2.WriteTimeout, httpx2.WriteTimeout),
    (httpcore2.PoolTimeout, httpx2.PoolTimeout),
    (httpcore2.TimeoutException, httpx2.TimeoutException),
    (httpcore2.ConnectError, httpx2.ConnectError),
    (httpcore2.ReadError, httpx2.ReadError),
    (httpcore2.WriteError, httpx2.WriteError),
    (httpcore2.NetworkError, httpx2.NetworkError),
    (httpcore2.ProxyError, httpx2.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx2.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx2.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx2.LocalProtocolError),
    (httpcore2.ProtocolError, httpx2.ProtocolError),
]


@contextlib.contextmanager
def _httpx_errors(request: Request) -> Iterator[None]:
    """httpcore2's exceptions as httpx2's: the one translation of the layer below."""
    try:
        yield
    except Exception as exc:
        for theirs, ours in _MAPPED:
            if isinstance(exc, theirs):
                raise ours(str(exc) or type(exc).__name__, request=request) from exc
        raise


def _time_left(timeout: float | None) -> float | None:
    """`timeout` shortened to what is left of the attempt; a passed deadline raises."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore2.ReadTimeout("the attempt's deadline (AIGW_TIMEOUT) passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(NetworkStream):
    def __init__(self, inner: NetworkStream):
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        return _DeadlineStream(
            self.inner.start_tls(ssl_context, server_hostname, _time_left(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _DeadlineBackend(NetworkBackend):
    def __init__(self, inner: NetworkBackend):
        self.inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> NetworkStream:
        stream = self.inner.connect_tcp(
            host, port, _time_left(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> NetworkStream:
        return _DeadlineStream(
            self.inner.connect_unix_socket(path, _time_left(timeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class ResponseTooLarge(AigwError):
    def __init__(self, limit: int, request: Request):
        super().__init__(
            f"the response to {request.method} {request.url.path} is larger than "
            f"AIGW_MAX_BODY_BYTES ({limit:,} bytes); it was not read to the end",
            code=ExitCode.API_ERROR,
            hint="raise AIGW_MAX_BODY_BYTES if this answer is expected to be this large",
        )


class _RawBody(SyncByteStream):
    """The pool's raw stream in small slices, each read before the attempt's deadline."""

    def __init__(self, stream: Iterable[bytes], request: Request, deadline: float | None):
        self.stream = stream
        self.request = request
        self.deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.stream)
        while True:
            token = _deadline.set(self.deadline)
            try:
                with _httpx_errors(self.request):
                    chunk = next(chunks, None)
            finally:
                _deadline.reset(token)
            if chunk is None:
                return
            for start in range(0, len(chunk), _SLICE):
                yield chunk[start : start + _SLICE]

    def close(self) -> None:
        close = getattr(self.stream, "close", None)
        if close is not None:
            close()


class _CappedEvents(SyncByteStream):
    """An event stream's raw body, refused once it has grown past the cap."""

    def __init__(self, inner: _RawBody, limit: int):
        self.inner = inner
        self.limit = limit

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                raise ResponseTooLarge(self.limit, self.inner.request)
            yield chunk

    def close(self) -> None:
        self.inner.close()


# Headers that describe the body as it came over the wire; the body handed up is decoded.
_WIRE_HEADERS = {b"content-encoding", b"content-length", b"transfer-encoding"}


class NetworkTransport(BaseTransport):
    """HTTP/1.1 over a connection pool; each attempt ends by `timeout` seconds, whole."""

    def __init__(
        self,
        *,
        timeout: float | None = 60.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify: ssl.SSLContext | bool = True,
    ):
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        context = httpx2.create_ssl_context(verify=verify)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=context, network_backend=_DeadlineBackend(SyncBackend())
        )

    def handle_request(self, request: Request) -> Response:
        deadline = time.monotonic() + self.timeout if self.timeout else None
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        token = _deadline.set(deadline)
        try:
            with _httpx_errors(request):
                answer = self._pool.handle_request(core_request)
        finally:
            _deadline.reset(token)
        assert isinstance(answer.stream, Iterable)
        raw = _RawBody(answer.stream, request, deadline)
        events = any(
            k.lower() == b"content-type" and v.startswith(b"text/event-stream")
            for k, v in answer.headers
        )
        response = Response(
            answer.status,
            headers=answer.headers,
            stream=_CappedEvents(raw, self.max_response_bytes) if events else raw,
            extensions=answer.extensions,
            request=request,
        )
        if events:
            return response
        try:
            body = self._read_capped(response)
        finally:
            response.close()
        headers = [(k, v) for k, v in answer.headers if k.lower() not in _WIRE_HEADERS]
        return Response(
            answer.status,
            headers=headers,
            content=body,
            extensions=answer.extensions,
            request=request,
        )

    def _read_capped(self, response: Response) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            for part in response.iter_bytes():
                size += len(part)
                if size > self.max_response_bytes:
                    raise ResponseTooLarge(self.max_response_bytes, response.request)
                parts.append(part)
        except httpx2.DecodingError as exc:
            raise AigwError(
                f"the upstream's answer to {response.request.method} "
                f"{response.request.url.path} could not be decoded ({exc})",
                code=ExitCode.API_ERROR,
            ) from None
        return b"".join(parts)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
