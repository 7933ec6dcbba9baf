"""AnswerCheckTransport: a successful answer must be what the API sends, JSON (or an event
stream); anything else — a captive portal's HTML page, a proxy's text — is an error, never a
success printed from whatever the SDK made of it.
"""

from __future__ import annotations

from aigw.errors import AigwError, ExitCode
from aigw.gateway.http import Request, Response, header
from aigw.gateway.transports import Layer

_SHOWN = 80  # characters of the body quoted in the error


class NonJsonAnswer(AigwError):
    def __init__(self, status: int, body: bytes):
        text = body[:_SHOWN].decode("utf-8", "replace").strip()
        super().__init__(
            f"the gateway answered {status} with a non-JSON body: {text!r}",
            code=ExitCode.API_ERROR,
            hint="check AI_GATEWAY_URL / OPENAI_BASE_URL: is it the API's address, ending in /v1?",
        )
        self.status_code = status  # for the log row


class AnswerCheckTransport(Layer):
    def handle_request(self, request: Request) -> Response:
        response = self.inner.handle_request(request)
        status = response.status_code
        if not 200 <= status < 300 or status == 204:
            return response
        content_type = header(response.headers, b"content-type")
        if content_type.startswith("text/event-stream"):
            return response
        body = response.read()
        if content_type.startswith("application/json") and body.lstrip()[:1] in (b"{", b"["):
            return response
        response.close()
        raise NonJsonAnswer(status, body)
