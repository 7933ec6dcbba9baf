"""The OpenAI API's error answer, for every server aigw runs (sandbox, gateway, bridge).

`ApiError` is the error in the API's shape — {"error": {message, type, param, code}} — with
its status (and headers); `error_response` is that answer as an aiohttp response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web


class ApiError(Exception):
    """An error answered in the API's shape: {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def error_response(error: ApiError) -> web.Response:
    """The aiohttp response answering `error`."""
    import orjson
    from aiohttp import web

    return web.Response(
        status=error.status,
        body=orjson.dumps(error.body()),
        content_type="application/json",
        headers=error.headers,
    )
