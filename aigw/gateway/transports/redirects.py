"""RedirectGuardTransport: a redirect never takes the call, its keys or its body to another host.

The OpenAI API never redirects, so a `Location` on another origin (scheme, host, port) is a
misconfigured or hostile upstream: following it would send the gateway key, the API key and,
for 307/308, the request body there. Such a redirect is an error naming the `Location` host
(exit 1; the log row says so). A redirect on the same origin is followed only for GET and
HEAD, the requests HTTP lets a client repeat without a body; any other is an error too.
The SDK's client would follow redirects itself: this layer, right on the network, answers
every redirect first, so the client never sees one.
"""

from __future__ import annotations

from aigw.errors import AigwError, ExitCode
from aigw.gateway.http import URL, Request, Response, header
from aigw.gateway.transports import Layer

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_HOPS = 5


class RedirectRefused(AigwError):
    def __init__(self, message: str):
        super().__init__(
            message,
            code=ExitCode.API_ERROR,
            hint="point AI_GATEWAY_URL / OPENAI_BASE_URL at the final address; "
            "aigw never follows a redirect to another host",
        )


def _origin(url: URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


class RedirectGuardTransport(Layer):
    def handle_request(self, request: Request) -> Response:
        response = self.inner.handle_request(request)
        for _hop in range(MAX_HOPS + 1):
            location = header(response.headers, b"location")
            if response.status_code not in REDIRECTS or not location:
                return response
            response.close()
            target = request.url.join(location)
            where = f"{request.method} {request.url.path}"
            if _origin(target) != _origin(request.url):
                host = target.host + (f":{target.port}" if target.port else "")
                raise RedirectRefused(
                    f"the upstream redirected {where} ({response.status_code}) to another "
                    f"host, {host}; not followed"
                )
            if request.method not in ("GET", "HEAD"):
                raise RedirectRefused(
                    f"the upstream redirected {where} ({response.status_code}) to "
                    f"{target.path}; not followed (it would repeat the request's body)"
                )
            request = Request(
                request.method, target, headers=request.headers, extensions=request.extensions
            )
            response = self.inner.handle_request(request)
        response.close()
        raise RedirectRefused(f"the upstream redirected more than {MAX_HOPS} times; stopped")
