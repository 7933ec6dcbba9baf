"""The one module that imports the HTTP library the OpenAI SDK really runs on.

openai 3.x moved from httpx to httpx2 (same transport API). Everything in aigw that speaks
HTTP on the Assistants side imports these names from here, so a future switch is one edit.
"""

from __future__ import annotations

import httpx2

BaseTransport = httpx2.BaseTransport
HTTPTransport = httpx2.HTTPTransport
MockTransport = httpx2.MockTransport
Request = httpx2.Request
Response = httpx2.Response
Headers = httpx2.Headers
URL = httpx2.URL
SyncByteStream = httpx2.SyncByteStream
TransportError = httpx2.TransportError
ConnectError = httpx2.ConnectError
ConnectTimeout = httpx2.ConnectTimeout
LocalProtocolError = httpx2.LocalProtocolError


def is_upstream_failure(exc: BaseException) -> bool:
    """Whether an exception is the upstream failing (unreachable, too slow, a broken answer),
    as opposed to a local problem such as a header value HTTP cannot carry. Only these are
    retried and counted by the circuit breaker."""
    return isinstance(
        exc, httpx2.TimeoutException | httpx2.NetworkError | httpx2.RemoteProtocolError
    )


def header(headers: Headers, name: bytes, default: str = "") -> str:
    """One header's value, like `headers.get` without its cost: httpx2 normalises every key
    on each lookup. `name` is lower-case bytes. Used on the paths every call takes (logging,
    cache)."""
    return headers_named(headers, (name,))[0] or default


def headers_named(headers: Headers, names: tuple[bytes, ...]) -> list[str]:
    """`header` for several names in one pass: their values in `names` order ("" if absent),
    a repeated header's values joined with ", " as httpx does."""
    found = [""] * len(names)
    for key, value in headers.raw:
        key = key.lower()
        if key in names:
            i = names.index(key)
            text = value.decode("latin-1")
            found[i] = f"{found[i]}, {text}" if found[i] else text
    return found
